package web

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

func TestStoreQueueAndHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	st, err := OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range []string{"a", "b", "c"} {
		if err := st.PutItem(&storedItem{PromptID: id, Number: float64(i), Prompt: json.RawMessage(`{}`), Extra: json.RawMessage(`{}`)}, uint64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := st.Finish(id, json.RawMessage(`{"id":"`+id+`"}`), 3); err != nil {
			t.Fatal(err)
		}
	}
	// Re-finishing "c" moves it to the end without growing the history.
	if err := st.Finish("c", json.RawMessage(`{"id":"c2"}`), 3); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, err = OpenStore(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	items, _ := st.Items()
	if len(items) != 0 {
		t.Fatalf("queue should be empty after Finish, got %d", len(items))
	}
	if c, _ := st.Counter(); c != 3 {
		t.Fatalf("counter %d, want 3", c)
	}
	var ids []string
	total, err := st.History(0, -1, func(id string, e json.RawMessage) { ids = append(ids, id) })
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"b", "d", "c"}; total != 3 || len(ids) != 3 || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
		t.Fatalf("history %v (total %d), want %v", ids, total, want)
	}
	if e, _ := st.Entry("a"); e != nil {
		t.Fatalf("trimmed entry still readable: %s", e)
	}
	if e, _ := st.Entry("c"); string(e) != `{"id":"c2"}` {
		t.Fatalf("entry c = %s", e)
	}
	ids = nil
	st.History(1, 1, func(id string, e json.RawMessage) { ids = append(ids, id) })
	if len(ids) != 1 || ids[0] != "d" {
		t.Fatalf("offset 1 max 1: %v", ids)
	}
	if err := st.DeleteHistory([]string{"d", "nope"}, false); err != nil {
		t.Fatal(err)
	}
	if n := st.HistoryCount(); n != 2 {
		t.Fatalf("count after delete %d", n)
	}
	if err := st.DeleteHistory(nil, true); err != nil {
		t.Fatal(err)
	}
	if n := st.HistoryCount(); n != 0 {
		t.Fatalf("count after clear %d", n)
	}
}
