package web

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func pngBytes(t testing.TB, w, h int, a uint8) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Pix[i*4], img.Pix[i*4+3] = 200, a
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload posts a multipart upload and returns status and body.
func (ts *testServer) upload(t testing.TB, path, filename string, data []byte, fields map[string]string) (int, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	if filename != "" {
		fw, _ := mw.CreateFormFile("image", filename)
		fw.Write(data)
	}
	mw.Close()
	return ts.do(t, "POST", path, buf.Bytes(), "Content-Type", mw.FormDataContentType())
}

func TestRoutesSmoke(t *testing.T) {
	ts := newTestServer(t, "")
	for _, p := range []string{"/prompt", "/queue", "/history", "/history?max_items=5", "/object_info",
		"/object_info/SaveImage", "/object_info/Nope", "/system_stats", "/features", "/embeddings",
		"/extensions", "/models", "/models/checkpoints", "/experiment/models", "/experiment/models/loras",
		"/users", "/settings", "/settings/Comfy.X", "/i18n", "/workflow_templates", "/global_subgraphs",
		"/jobs", "/jobs?status=completed,failed,cancelled&limit=10&offset=0", "/v2/userdata"} {
		for _, pre := range []string{"", "/api"} {
			code, b := ts.do(t, "GET", pre+p, nil)
			if code != 200 || !json.Valid(b) {
				t.Errorf("GET %s%s: %d %.200s", pre, p, code, b)
			}
		}
	}
	for _, p := range []string{"/internal/logs", "/internal/logs/raw", "/internal/folder_paths", "/internal/files/output", "/api/api/jobs"} {
		if code, b := ts.do(t, "GET", p, nil); code != 200 || !json.Valid(b) {
			t.Errorf("GET %s: %d %s", p, code, b)
		}
	}
	for p, want := range map[string]int{"/models/nope": 404, "/api/jobs/nope": 404, "/internal/files/etc": 400,
		"/api/jobs?limit=0": 400, "/api/jobs?limit=x": 400, "/api/jobs?status=bogus": 400, "/api/jobs?sort_by=x": 400,
		"/history?max_items=x": 400, "/userdata": 400, "/userdata?dir=nothere": 404, "/api/internal/logs": 404} {
		if code, b := ts.do(t, "GET", p, nil); code != want {
			t.Errorf("GET %s: %d (want %d) %s", p, code, want, b)
		}
	}
	var oi map[string]map[string]any
	ts.getJSON(t, "/object_info/SaveImage", &oi)
	if oi["SaveImage"]["output_node"] != true || oi["SaveImage"]["category"] != "image" {
		t.Errorf("object_info SaveImage %v", oi)
	}
	var ss struct {
		System  map[string]any   `json:"system"`
		Devices []map[string]any `json:"devices"`
	}
	ts.getJSON(t, "/system_stats", &ss)
	for _, k := range []string{"os", "python_version", "embedded_python", "comfyui_version", "pytorch_version", "argv", "ram_total", "ram_free"} {
		if _, ok := ss.System[k]; !ok {
			t.Errorf("system_stats lacks %s", k)
		}
	}
	if len(ss.Devices) != 1 || ss.Devices[0]["index"] != 0.0 {
		t.Errorf("devices %v", ss.Devices)
	}
	// Settings round trip.
	ts.do(t, "POST", "/api/settings/Comfy.Theme", `"dark"`)
	ts.do(t, "POST", "/api/settings", `{"A.b": 1}`)
	var st map[string]any
	ts.getJSON(t, "/api/settings", &st)
	if st["Comfy.Theme"] != "dark" || st["A.b"] != 1.0 {
		t.Errorf("settings %v", st)
	}
	// GET / answers (no page configured) and OPTIONS pre-flight is 200.
	if code, _ := ts.do(t, "GET", "/", nil); code != 200 {
		t.Errorf("GET /: %d", code)
	}
	if code, _ := ts.do(t, "OPTIONS", "/prompt", nil); code != 200 {
		t.Errorf("OPTIONS: %d", code)
	}
}

func TestFrontEndRoot(t *testing.T) {
	fe := t.TempDir()
	os.WriteFile(filepath.Join(fe, "index.html"), []byte("<html>frontend</html>"), 0o644)
	os.MkdirAll(filepath.Join(fe, "extensions", "core"), 0o755)
	os.WriteFile(filepath.Join(fe, "extensions", "core", "a.js"), []byte("//"), 0o644)
	os.MkdirAll(filepath.Join(fe, "assets"), 0o755)
	os.WriteFile(filepath.Join(fe, "assets", "x.js"), []byte("1"), 0o644)
	ts := newTestServer(t, "", func(c *Config) { c.FrontEndRoot = fe })
	req, _ := http.NewRequest("GET", ts.URL+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "frontend") || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("index: %s %v", b, resp.Header)
	}
	var ext []string
	ts.getJSON(t, "/api/extensions", &ext)
	if len(ext) != 1 || ext[0] != "/extensions/core/a.js" {
		t.Errorf("extensions %v", ext)
	}
	if code, b := ts.do(t, "GET", "/assets/x.js", nil); code != 200 || string(b) != "1" {
		t.Errorf("asset: %d %s", code, b)
	}
	for _, p := range []string{"/assets/", "/assets", "/../index.html", "/%2e%2e/etc/passwd", "/nope.js"} {
		if code, _ := ts.do(t, "GET", p, nil); code == 200 && p != "/../index.html" {
			t.Errorf("GET %s: %d", p, code)
		}
	}
}

func TestPathTraversal(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, dir)
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret.png")
	os.WriteFile(secret, pngBytes(t, 2, 2, 255), 0o644)
	out := filepath.Join(dir, "output")
	os.WriteFile(filepath.Join(out, "ok.png"), pngBytes(t, 2, 2, 255), 0o644)
	os.Symlink(secretDir, filepath.Join(out, "linkdir"))
	os.Symlink(secret, filepath.Join(out, "link.png"))
	os.MkdirAll(filepath.Join(dir, "user", "default"), 0o755)
	os.Symlink(secret, filepath.Join(dir, "user", "default", "secret.png"))
	os.Symlink(secretDir, filepath.Join(dir, "user", "default", "workflows"))

	if code, _ := ts.do(t, "GET", "/view?filename=ok.png", nil); code != 200 {
		t.Fatalf("control: %d", code)
	}
	views := []string{
		"filename=../input/x.png", "filename=..%2Finput%2Fx.png", "filename=%2e%2e%2fsecret.png",
		"filename=/etc/passwd", "filename=secret.png&subfolder=..", "filename=secret.png&subfolder=../..",
		"filename=secret.png&subfolder=" + secretDir, "filename=secret.png&subfolder=linkdir",
		"filename=link.png", "filename=passwd&subfolder=/etc", "filename=x.png&type=../output",
		"filename=x.png&type=models", "filename=ok.png&subfolder=a%00b", "filename=", "filename=..",
		"filename=ok.png%00.txt", "filename=..%5Csecret.png", "filename=ok.png&subfolder=..%2F..%2Fetc",
		"filename=ok.png [../x]", "filename=secret.png [input]&subfolder=../output/linkdir",
	}
	for _, q := range views {
		code, b := ts.do(t, "GET", "/view?"+q, nil)
		if code < 400 || code >= 500 {
			t.Errorf("GET /view?%s: %d %.40q", q, code, b)
		}
	}
	// Uploads may not escape either (type, subfolder, filename).
	png1 := pngBytes(t, 2, 2, 255)
	for _, f := range []map[string]string{
		{"subfolder": "../x"}, {"subfolder": "/tmp"}, {"subfolder": "linkdir"}, {"type": "models"},
		{"type": "../user"}, {"subfolder": "a/../../b"},
	} {
		if f["subfolder"] == "linkdir" {
			f["type"] = "output"
		}
		code, b := ts.upload(t, "/upload/image", "up.png", png1, f)
		if code < 400 || code >= 500 {
			t.Errorf("upload %v: %d %s", f, code, b)
		}
	}
	for _, name := range []string{"..", "../../evil.png", "/etc/evil.png"} {
		code, b := ts.upload(t, "/upload/image", name, png1, nil)
		if name == ".." {
			if code < 400 || code >= 500 {
				t.Errorf("upload name %q: %d %s", name, code, b)
			}
			continue
		}
		// Directory parts are dropped: the file lands in input/ under its base name.
		var r uploadResult
		if code != 200 || json.Unmarshal(b, &r) != nil || r.Name != "evil.png" || r.Subfolder != "" {
			t.Errorf("upload name %q: %d %s", name, code, b)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "evil.png")); err == nil {
		t.Error("upload escaped the input folder")
	}
	if ents, _ := os.ReadDir(secretDir); len(ents) != 1 {
		t.Errorf("files written outside: %v", ents)
	}
	// Mask uploads with an escaping original_ref write nothing.
	code, _ := ts.upload(t, "/upload/mask", "m.png", png1, map[string]string{"original_ref": `{"filename": "../../secret.png", "type": "output"}`})
	if code != 200 {
		t.Errorf("mask with bad ref: %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "input", "m.png")); err == nil {
		t.Error("mask with a bad ref was written")
	}
	// Userdata: symlinks out of the user root and traversal are refused.
	for _, p := range []string{"/userdata/..%2F..%2Fetc%2Fpasswd", "/userdata/%2e%2e%2fsecret.png", "/userdata/secret.png",
		"/api/userdata/..%252F..%252Fetc%252Fpasswd", "/userdata?dir=..", "/userdata?dir=%2e%2e", "/v2/userdata?path=..", "/userdata/%2Fetc%2Fpasswd",
		"/userdata?dir=workflows", "/userdata/workflows%2Fsecret.png", "/v2/userdata?path=workflows"} {
		code, b := ts.do(t, "GET", p, nil)
		if code < 400 || code >= 500 {
			t.Errorf("GET %s: %d %.60q", p, code, b)
		}
	}
	for _, p := range []string{"/userdata/..%2Fx.json", "/userdata/%2Ftmp%2Fx.json", "/userdata/a.json/move/..%2F..%2Fb.json"} {
		code, _ := ts.do(t, "POST", p, "{}")
		if code < 400 || code >= 500 {
			t.Errorf("POST %s: %d", p, code)
		}
	}
	if code, _ := ts.do(t, "DELETE", "/userdata/..%2F..%2Fsecret.png", nil); code < 400 || code >= 500 {
		t.Errorf("DELETE traversal: %d", code)
	}
	if _, err := os.Stat(secret); err != nil {
		t.Fatal("secret file deleted")
	}
}

func TestUploadAndUserdata(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, dir)
	a := pngBytes(t, 4, 4, 255)
	b := pngBytes(t, 4, 4, 128)
	up := func(data []byte, f map[string]string) uploadResult {
		code, body := ts.upload(t, "/api/upload/image", "pic.png", data, f)
		var r uploadResult
		if code != 200 || json.Unmarshal(body, &r) != nil {
			t.Fatalf("upload: %d %s", code, body)
		}
		return r
	}
	if r := up(a, nil); r.Name != "pic.png" || r.Type != "input" {
		t.Errorf("first %+v", r)
	}
	if r := up(a, nil); r.Name != "pic.png" {
		t.Errorf("duplicate content should reuse the name: %+v", r)
	}
	if r := up(b, nil); r.Name != "pic (1).png" {
		t.Errorf("different content: %+v", r)
	}
	if r := up(b, map[string]string{"overwrite": "true"}); r.Name != "pic.png" {
		t.Errorf("overwrite: %+v", r)
	}
	if r := up(a, map[string]string{"subfolder": "pasted/x"}); r.Subfolder != "pasted/x" {
		t.Errorf("subfolder %+v", r)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "input", "pasted", "x", "pic.png")); !bytes.Equal(got, a) {
		t.Error("subfolder upload content")
	}
	if code, _ := ts.upload(t, "/upload/image", "", nil, nil); code != 400 {
		t.Errorf("no file: %d", code)
	}
	// Mask: alpha of the upload applied to the original.
	code, body := ts.upload(t, "/upload/mask", "masked.png", b, map[string]string{"original_ref": `{"filename": "pic (1).png", "type": "input"}`})
	if code != 200 {
		t.Fatalf("mask: %d %s", code, body)
	}
	img, err := png.Decode(bytes.NewReader(mustRead(t, filepath.Join(dir, "input", "masked.png"))))
	if err != nil {
		t.Fatal(err)
	}
	if c := color.NRGBAModel.Convert(img.At(1, 1)).(color.NRGBA); c.A != 128 {
		t.Errorf("mask alpha %v", c)
	}
	// /view channels and preview.
	for _, q := range []string{"channel=rgb", "channel=a", "preview=webp;50", "preview=jpeg"} {
		if code, _ := ts.do(t, "GET", "/view?type=input&filename=masked.png&"+q, nil); code != 200 {
			t.Errorf("view %s: %d", q, code)
		}
	}
	// Body limit: an upload over --max-upload-size is refused with 413.
	small := newTestServer(t, "", func(c *Config) { c.MaxUploadSize = 1000 })
	if code, _ := small.upload(t, "/upload/image", "big.png", make([]byte, 5000), nil); code != 413 {
		t.Errorf("oversized upload: %d", code)
	}
	if code, _ := small.do(t, "POST", "/prompt", strings.Repeat(" ", 5000)+"{}"); code != 413 {
		t.Errorf("oversized prompt: %d", code)
	}

	// Userdata as the frontend uses it.
	if code, b := ts.do(t, "POST", "/api/userdata/workflows%2Fa.json?overwrite=false&full_info=true", `{"x":1}`); code != 200 || !strings.Contains(string(b), `"path":"workflows/a.json"`) {
		t.Errorf("save workflow: %d %s", code, b)
	}
	if code, _ := ts.do(t, "POST", "/api/userdata/workflows%2Fa.json?overwrite=false", `{}`); code != 409 {
		t.Errorf("overwrite=false on existing: %d", code)
	}
	var list []map[string]any
	ts.getJSON(t, "/api/userdata?dir=workflows&recurse=true&split=false&full_info=true", &list)
	if len(list) != 1 || list[0]["path"] != "a.json" {
		t.Errorf("list %v", list)
	}
	if code, b := ts.do(t, "GET", "/api/userdata/workflows%2Fa.json", nil); code != 200 || string(b) != `{"x":1}` {
		t.Errorf("get: %d %s", code, b)
	}
	if code, b := ts.do(t, "POST", "/api/userdata/workflows%2Fa.json/move/workflows%2Fb.json", nil); code != 200 || string(b) != `"workflows/b.json"` {
		t.Errorf("move: %d %s", code, b)
	}
	var v2 []map[string]any
	ts.getJSON(t, "/api/v2/userdata?path=workflows", &v2)
	if len(v2) != 1 || v2[0]["path"] != "workflows/b.json" {
		t.Errorf("v2 %v", v2)
	}
	if code, _ := ts.do(t, "DELETE", "/api/userdata/workflows%2Fb.json", nil); code != 204 {
		t.Errorf("delete: %d", code)
	}
	if code, _ := ts.do(t, "GET", "/api/userdata/workflows%2Fb.json", nil); code != 404 {
		t.Errorf("deleted file: %d", code)
	}
}

func mustRead(t testing.TB, p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOriginAndAuth(t *testing.T) {
	ts := newTestServer(t, "")
	body := map[string]any{"prompt": imagePrompt(0.1, "o")}
	if code, _ := ts.do(t, "POST", "/prompt", body, "Origin", "http://evil.example"); code != 403 {
		t.Errorf("foreign origin: %d", code)
	}
	if code, _ := ts.do(t, "POST", "/prompt", body, "Origin", "http://"+ts.Host); code != 200 {
		t.Errorf("same origin: %d", code)
	}
	hdr := http.Header{"Origin": {"http://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+ts.Host+"/ws", hdr); err == nil || resp == nil || resp.StatusCode != 403 {
		t.Errorf("foreign-origin websocket allowed: %v", err)
	}

	sec := newTestServer(t, "", func(c *Config) { c.AuthToken = "s3cret" })
	if code, _ := sec.do(t, "GET", "/system_stats", nil); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := sec.do(t, "GET", "/system_stats", nil, "Authorization", "Bearer wrong"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	if code, _ := sec.do(t, "GET", "/system_stats", nil, "Authorization", "Bearer s3cret"); code != 200 {
		t.Errorf("bearer: %d", code)
	}
	resp, err := http.Get(sec.URL + "/?token=s3cret")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == tokenCookie {
			cookie = c
		}
	}
	if resp.StatusCode != 200 || cookie == nil || !cookie.HttpOnly {
		t.Fatalf("?token= login: %d %v", resp.StatusCode, cookie)
	}
	if code, _ := sec.do(t, "GET", "/system_stats", nil, "Cookie", tokenCookie+"=s3cret"); code != 200 {
		t.Errorf("cookie: %d", code)
	}
	if _, _, err := websocket.DefaultDialer.Dial("ws://"+sec.Host+"/ws", nil); err == nil {
		t.Error("websocket without token allowed")
	}
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+sec.Host+"/ws?token=s3cret&clientId=x", nil)
	if err != nil {
		t.Fatalf("websocket with token: %v", err)
	}
	conn.Close()

	// DNS rebinding: a loopback-only server refuses foreign Host names, even same-origin ones.
	lo := newTestServer(t, "", func(c *Config) { c.LoopbackOnly = true })
	if code, _ := lo.do(t, "GET", "/system_stats", nil); code != 200 {
		t.Errorf("loopback host: %d", code)
	}
	req0, _ := http.NewRequest("POST", lo.URL+"/prompt", strings.NewReader(`{}`))
	req0.Host = "evil.example:" + strings.Split(lo.Host, ":")[1]
	req0.Header.Set("Origin", "http://"+req0.Host)
	if resp, err := http.DefaultClient.Do(req0); err != nil || resp.StatusCode != 403 {
		t.Errorf("rebinding host allowed: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	for h, ok := range map[string]bool{"localhost:8188": true, "127.0.0.2": true, "[::1]:80": true, "app.localhost": true, "evil.example": false, "127.0.0.1.nip.io": false} {
		if loopbackHost(h) != ok {
			t.Errorf("loopbackHost(%q) != %v", h, ok)
		}
	}

	cors := newTestServer(t, "", func(c *Config) { c.CORSOrigin = "*" })
	req, _ := http.NewRequest("POST", cors.URL+"/prompt", strings.NewReader(`{"prompt": {"1": {"class_type": "WebTestText", "inputs": {"value": 1}}}}`))
	req.Header.Set("Origin", "http://elsewhere.example")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("cors: %d %v", resp.StatusCode, resp.Header)
	}
}

func TestQueueOrderingAndHistoryPaging(t *testing.T) {
	ts := newTestServer(t, "")
	c := dialWS(t, ts, "qq")
	// Block the worker so the queue can be inspected.
	blocker := ts.queue(t, map[string]any{"client_id": "qq", "prompt": map[string]any{
		"1": map[string]any{"class_type": "WebTestImage", "inputs": map[string]any{"width": 4, "height": 4, "value": 0.7}},
		"2": map[string]any{"class_type": "WebTestSleep", "inputs": map[string]any{"image": []any{"1", 0}, "steps": 100000, "step_ms": 5}},
		"3": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"2", 0}, "filename_prefix": "b"}},
	}})
	for {
		if m := c.next(t, 10*time.Second); m.Type == "progress" {
			break
		}
	}
	text := func(v int) map[string]any {
		return map[string]any{"1": map[string]any{"class_type": "WebTestText", "inputs": map[string]any{"value": v}}}
	}
	a := ts.queue(t, map[string]any{"prompt": text(1), "client_id": "qq"})
	b := ts.queue(t, map[string]any{"prompt": text(2), "client_id": "qq"})
	front := ts.queue(t, map[string]any{"prompt": text(3), "client_id": "qq", "front": true})
	code, raw := ts.do(t, "POST", "/prompt", map[string]any{"prompt": text(4), "client_id": "qq", "number": 12, "prompt_id": "explicit-id"})
	if code != 200 || !strings.Contains(string(raw), `"number":12.0`) || !strings.Contains(string(raw), `"prompt_id":"explicit-id"`) {
		t.Errorf("explicit number: %s", raw)
	}
	if code, _ := ts.do(t, "POST", "/prompt", map[string]any{"prompt": text(4), "prompt_id": "explicit-id"}); code != 400 {
		t.Errorf("duplicate queued prompt_id: %d", code)
	}
	gone := ts.queue(t, map[string]any{"prompt": text(5), "client_id": "qq"})
	var q struct {
		Running [][]any `json:"queue_running"`
		Pending [][]any `json:"queue_pending"`
	}
	ts.getJSON(t, "/queue", &q)
	var order []any
	for _, it := range q.Pending {
		order = append(order, it[1])
		if len(it) != 5 {
			t.Errorf("queue tuple %v", it)
		}
	}
	want := []any{front, a, b, gone, "explicit-id"}
	if len(order) != len(want) {
		t.Fatalf("pending %v want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("pending %v want %v", order, want)
		}
	}
	ts.do(t, "POST", "/queue", map[string]any{"delete": []string{gone, blocker}})
	ts.getJSON(t, "/queue", &q)
	if len(q.Pending) != 4 || len(q.Running) != 1 {
		t.Fatalf("after delete: %v", q)
	}
	var jobs struct {
		Jobs       []map[string]any `json:"jobs"`
		Pagination map[string]any   `json:"pagination"`
	}
	ts.getJSON(t, "/api/jobs?status=in_progress,pending&limit=2&offset=0", &jobs)
	if len(jobs.Jobs) != 2 || jobs.Pagination["total"] != 5.0 || jobs.Pagination["has_more"] != true {
		t.Errorf("jobs %v", jobs)
	}
	ts.do(t, "POST", "/interrupt", nil)
	c.until(t, "explicit-id", 10*time.Second)
	var hist map[string]any
	ts.getJSON(t, "/history", &hist)
	if len(hist) != 5 {
		t.Fatalf("history has %d entries", len(hist))
	}
	// max_items returns the newest, oldest first; offset skips the oldest.
	code, raw = ts.do(t, "GET", "/history?max_items=2", nil)
	if code != 200 || strings.Index(string(raw), b) < 0 || strings.Index(string(raw), "explicit-id") < strings.Index(string(raw), b) {
		t.Errorf("max_items=2: %s", raw)
	}
	hist = nil
	ts.getJSON(t, "/history?offset=4", &hist)
	if len(hist) != 1 || hist["explicit-id"] == nil {
		t.Errorf("offset=4: %v", hist)
	}
	ts.do(t, "POST", "/history", map[string]any{"delete": []string{a}})
	hist = nil
	ts.getJSON(t, "/history", &hist)
	if len(hist) != 4 || hist[a] != nil {
		t.Errorf("after delete %d", len(hist))
	}
	ts.do(t, "POST", "/history", map[string]any{"clear": true})
	hist = nil
	ts.getJSON(t, "/history", &hist)
	if len(hist) != 0 {
		t.Errorf("after clear %d", len(hist))
	}
}

// TestFrontendBootSequence replays the calls the official ComfyUI frontend (1.3x) makes while
// it boots (server-api.md §1.14), with its Comfy-User header, and checks each answer's shape.
func TestFrontendBootSequence(t *testing.T) {
	fe := t.TempDir()
	os.WriteFile(filepath.Join(fe, "index.html"), []byte("<html></html>"), 0o644)
	ts := newTestServer(t, "", func(c *Config) { c.FrontEndRoot = fe })
	type call struct {
		method, path string
		codes        []int
		shape        string // "object", "array", "any"
	}
	calls := []call{
		{"GET", "/", []int{200}, ""},
		{"GET", "/api/users", []int{200}, "object"},
		{"GET", "/api/settings", []int{200}, "object"},
		{"GET", "/api/i18n", []int{200}, "object"},
		{"GET", "/api/system_stats", []int{200}, "object"},
		{"GET", "/api/extensions", []int{200}, "array"},
		{"GET", "/api/object_info", []int{200}, "object"},
		{"GET", "/api/embeddings", []int{200}, "array"},
		{"GET", "/api/userdata?dir=workflows&recurse=true&split=false&full_info=true", []int{200, 404}, ""},
		{"GET", "/api/userdata?dir=subgraphs&recurse=true&split=false&full_info=true", []int{200, 404}, ""},
		{"GET", "/api/userdata/user.css", []int{404}, ""},
		{"GET", "/api/userdata/comfy.templates.json", []int{404}, ""},
		{"GET", "/api/workflow_templates", []int{200}, "object"},
		{"GET", "/templates/index.json", []int{404}, ""},
		{"GET", "/api/global_subgraphs", []int{200}, "object"},
		{"GET", "/api/queue", []int{200}, "object"},
		{"GET", "/api/history?max_items=64", []int{200}, "object"},
		{"GET", "/api/jobs?status=in_progress,pending&limit=200&offset=0", []int{200}, "object"},
		{"GET", "/api/jobs?status=completed,failed,cancelled&limit=64&offset=0", []int{200}, "object"},
		{"GET", "/internal/folder_paths", []int{200}, "object"},
		{"GET", "/api/experiment/models", []int{200}, "array"},
		{"GET", "/api/experiment/models/checkpoints", []int{200}, "array"},
		{"GET", "/internal/logs/raw", []int{200}, "object"},
		{"POST", "/api/settings/Comfy.TutorialCompleted", []int{200}, ""},
		{"GET", "/api/prompt", []int{200}, "object"},
	}
	for _, c := range calls {
		var body any
		if c.method == "POST" {
			body = "true"
		}
		code, b := ts.do(t, c.method, c.path, body, "Comfy-User", "", "Origin", "http://"+ts.Host)
		okCode := false
		for _, w := range c.codes {
			okCode = okCode || code == w
		}
		if !okCode {
			t.Errorf("%s %s: %d %.100s", c.method, c.path, code, b)
			continue
		}
		switch c.shape {
		case "object", "array":
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Errorf("%s: not JSON: %.100s", c.path, b)
				continue
			}
			_, isObj := v.(map[string]any)
			_, isArr := v.([]any)
			if c.shape == "object" && !isObj || c.shape == "array" && !isArr {
				t.Errorf("%s: want %s, got %.100s", c.path, c.shape, b)
			}
		}
	}
	// The websocket: status with sid, feature_flags handshake, logs subscription.
	ws := dialWS(t, ts, "")
	if len(ws.sid) != 32 {
		t.Errorf("generated sid %q", ws.sid)
	}
	ws.conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"feature_flags","data":{"supports_preview_metadata":true,"supports_manager_v4_ui":true,"supports_progress_text_metadata":true}}`))
	if m := ws.next(t, 5*time.Second); m.Type != "feature_flags" || m.Data["max_upload_size"] == nil || m.Data["extension"] != nil {
		t.Errorf("feature flags %s", m.Raw)
	}
	if code, _ := ts.do(t, "PATCH", "/internal/logs/subscribe", map[string]any{"clientId": ws.sid, "enabled": true}); code != 200 {
		t.Errorf("logs subscribe: %d", code)
	}
	ts.cfg.Logs.Write([]byte("hello log\n"))
	if m := ws.next(t, 5*time.Second); m.Type != "logs" {
		t.Errorf("logs message %s", m.Raw)
	}
	// Reconnecting with the sid keeps it.
	again := dialWS(t, ts, ws.sid)
	if again.sid != ws.sid {
		t.Errorf("reconnect sid %q", again.sid)
	}
}

// TestSensitiveExtraData: comfy.org keys are removed from extra_data: never in /queue,
// /history, /api/jobs or the database file.
func TestSensitiveExtraData(t *testing.T) {
	dir := t.TempDir()
	ts := newTestServer(t, dir)
	c := dialWS(t, ts, "sens")
	id := ts.queue(t, map[string]any{"client_id": "sens", "prompt": map[string]any{
		"1": map[string]any{"class_type": "WebTestText", "inputs": map[string]any{"value": 9}}},
		"extra_data": map[string]any{"api_key_comfy_org": "SECRET-KEY-123", "auth_token_comfy_org": "SECRET-TOK-456", "extra_pnginfo": map[string]any{"workflow": map[string]any{"id": "wf-1"}}}})
	c.until(t, id, 10*time.Second)
	for _, p := range []string{"/history", "/history/" + id, "/api/jobs", "/api/jobs/" + id, "/queue"} {
		_, b := ts.do(t, "GET", p, nil)
		if strings.Contains(string(b), "SECRET") {
			t.Errorf("%s leaks a key: %s", p, b)
		}
	}
	var h map[string]struct {
		Prompt []json.RawMessage `json:"prompt"`
	}
	ts.getJSON(t, "/history/"+id, &h)
	var extra map[string]any
	json.Unmarshal(h[id].Prompt[3], &extra)
	if extra["client_id"] != "sens" || extra["create_time"] == nil || extra["extra_pnginfo"] == nil {
		t.Errorf("extra_data %v", extra)
	}
	var jobs struct {
		Jobs []map[string]any `json:"jobs"`
	}
	ts.getJSON(t, "/api/jobs?workflow_id=wf-1", &jobs)
	if len(jobs.Jobs) != 1 || jobs.Jobs[0]["workflow_id"] != "wf-1" {
		t.Errorf("jobs by workflow %v", jobs.Jobs)
	}
	ts.stop()
	db, _ := os.ReadFile(filepath.Join(dir, "user", "comfygo.db"))
	if bytes.Contains(db, []byte("SECRET")) {
		t.Error("the database holds a comfy.org key")
	}
}
