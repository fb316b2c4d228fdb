package web

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/comfygo/comfygo/graph"
)

// Store is the durable queue and history, a bbolt file in the user folder. Every queue change
// and every history entry is committed (fsynced) before it is acknowledged, so a kill -9 loses
// nothing that a client was told about.
type Store struct {
	db *bolt.DB
}

var (
	bucketQueue   = []byte("queue")       // prompt_id -> storedItem JSON
	bucketHistory = []byte("history")     // seq (u64 BE) -> storedEntry JSON
	bucketHistIdx = []byte("history_idx") // prompt_id -> seq
	bucketMeta    = []byte("meta")        // "counter" -> u64 BE, "hseq" -> u64 BE
)

// storedItem is a queue item as persisted.
type storedItem struct {
	Number   float64         `json:"number"`
	IsFloat  bool            `json:"is_float,omitempty"` // number came from the client (echoed as a float)
	PromptID string          `json:"prompt_id"`
	Prompt   json.RawMessage `json:"prompt"`
	Extra    json.RawMessage `json:"extra_data"`
	Outputs  []string        `json:"outputs"`
	// Running is set while the worker executes it; Attempts counts starts (a prompt found running
	// at start-up was interrupted by a crash and is re-run once).
	Running  bool `json:"running,omitempty"`
	Attempts int  `json:"attempts,omitempty"`

	parsed *graph.Prompt // the validated prompt, when queued by this process
}

// storedEntry is a history entry as persisted: the id and the entry JSON ComfyUI returns.
type storedEntry struct {
	ID    string          `json:"id"`
	Entry json.RawMessage `json:"entry"`
}

// OpenStore opens (creating if needed) the database file at path.
func OpenStore(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open queue database %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketQueue, bucketHistory, bucketHistIdx, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init queue database %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Counter returns the persisted prompt counter (the next default number).
func (s *Store) Counter() (uint64, error) {
	var c uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		c = getU64(tx.Bucket(bucketMeta).Get([]byte("counter")))
		return nil
	})
	return c, err
}

// PutItem stores (or replaces) a queue item; counter, when non-zero, is stored as the next
// default number in the same transaction.
func (s *Store) PutItem(it *storedItem, counter uint64) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if counter > 0 {
			if err := tx.Bucket(bucketMeta).Put([]byte("counter"), u64(counter)); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketQueue).Put([]byte(it.PromptID), b)
	})
}

// DeleteItems removes queue items.
func (s *Store) DeleteItems(ids []string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		q := tx.Bucket(bucketQueue)
		for _, id := range ids {
			if err := q.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Items returns every stored queue item.
func (s *Store) Items() ([]*storedItem, error) {
	var out []*storedItem
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketQueue).ForEach(func(k, v []byte) error {
			it := new(storedItem)
			if err := json.Unmarshal(v, it); err != nil {
				return fmt.Errorf("queue item %q: %w", k, err)
			}
			out = append(out, it)
			return nil
		})
	})
	return out, err
}

// Finish atomically removes queue item id and appends its history entry, dropping the oldest
// entries beyond maxHistory. An entry with the same id replaces the old one (moved to the end).
func (s *Store) Finish(id string, entry []byte, maxHistory int) error {
	se, err := json.Marshal(storedEntry{ID: id, Entry: entry})
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketQueue).Delete([]byte(id)); err != nil {
			return err
		}
		h, idx, meta := tx.Bucket(bucketHistory), tx.Bucket(bucketHistIdx), tx.Bucket(bucketMeta)
		count := getU64(meta.Get([]byte("hcount")))
		if old := idx.Get([]byte(id)); old != nil {
			if err := h.Delete(old); err != nil {
				return err
			}
		} else {
			count++
		}
		seq := getU64(meta.Get([]byte("hseq"))) + 1
		if err := meta.Put([]byte("hseq"), u64(seq)); err != nil {
			return err
		}
		if err := h.Put(u64(seq), se); err != nil {
			return err
		}
		if err := idx.Put([]byte(id), u64(seq)); err != nil {
			return err
		}
		// Trim the oldest entries.
		for ; count > uint64(maxHistory); count-- {
			c := h.Cursor()
			k, v := c.First()
			if k == nil {
				break
			}
			var old storedEntry
			if json.Unmarshal(v, &old) == nil {
				if cur := idx.Get([]byte(old.ID)); cur != nil && bytes.Equal(cur, k) {
					if err := idx.Delete([]byte(old.ID)); err != nil {
						return err
					}
				}
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return meta.Put([]byte("hcount"), u64(count))
	})
}

// History calls fn for each history entry, oldest first, starting at index offset (0-based)
// and stopping after max entries (max < 0: all). It returns the total number of entries.
func (s *Store) History(offset, max int, fn func(id string, entry json.RawMessage)) (int, error) {
	total := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		h := tx.Bucket(bucketHistory)
		total = int(getU64(tx.Bucket(bucketMeta).Get([]byte("hcount"))))
		c := h.Cursor()
		i, n := 0, 0
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if i < offset {
				i++
				continue
			}
			i++
			if max >= 0 && n >= max {
				break
			}
			var se storedEntry
			if err := json.Unmarshal(v, &se); err != nil {
				return fmt.Errorf("history entry %x: %w", k, err)
			}
			fn(se.ID, se.Entry)
			n++
		}
		return nil
	})
	return total, err
}

// HistoryScan calls fn for every history entry, oldest first, with its sequence number (unique
// per stored entry; a re-run with the same prompt_id gets a new one) and a decoder of the
// entry. decode must only be called inside fn.
func (s *Store) HistoryScan(fn func(seq uint64, decode func() (string, json.RawMessage, error))) error {
	return s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketHistory).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			fn(getU64(k), func() (string, json.RawMessage, error) {
				var se storedEntry
				err := json.Unmarshal(v, &se)
				return se.ID, se.Entry, err
			})
		}
		return nil
	})
}

// HistoryCount returns the number of history entries.
func (s *Store) HistoryCount() int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = int(getU64(tx.Bucket(bucketMeta).Get([]byte("hcount"))))
		return nil
	})
	return n
}

// Entry returns history entry id, or nil.
func (s *Store) Entry(id string) (json.RawMessage, error) {
	var out json.RawMessage
	err := s.db.View(func(tx *bolt.Tx) error {
		seq := tx.Bucket(bucketHistIdx).Get([]byte(id))
		if seq == nil {
			return nil
		}
		v := tx.Bucket(bucketHistory).Get(seq)
		if v == nil {
			return nil
		}
		var se storedEntry
		if err := json.Unmarshal(v, &se); err != nil {
			return err
		}
		out = append(json.RawMessage(nil), se.Entry...)
		return nil
	})
	return out, err
}

// DeleteHistory removes the given entries; clear removes all.
func (s *Store) DeleteHistory(ids []string, clear bool) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if clear {
			for _, b := range [][]byte{bucketHistory, bucketHistIdx} {
				if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
					return err
				}
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
		}
		h, idx, meta := tx.Bucket(bucketHistory), tx.Bucket(bucketHistIdx), tx.Bucket(bucketMeta)
		count := getU64(meta.Get([]byte("hcount")))
		if clear {
			count = 0
		}
		for _, id := range ids {
			seq := idx.Get([]byte(id))
			if seq == nil {
				continue
			}
			if err := h.Delete(seq); err != nil {
				return err
			}
			if err := idx.Delete([]byte(id)); err != nil {
				return err
			}
			if count > 0 {
				count--
			}
		}
		return meta.Put([]byte("hcount"), u64(count))
	})
}
