package translate

import (
	"errors"
	"io"
	"testing"

	"tollgate.dev/tollgate/dataplane/schema/openai"
)

func TestChunkQueue(t *testing.T) {
	var q ChunkQueue
	if c, err := q.Pop(); c != nil || err != nil || q.Ended() {
		t.Fatalf("empty queue: %v, %v", c, err)
	}
	a, b, c := &openai.ChatChunk{ID: "a"}, &openai.ChatChunk{ID: "b"}, &openai.ChatChunk{ID: "c"}
	q.Push(a)
	q.Push(b)
	for _, want := range []*openai.ChatChunk{a, b} {
		if got, err := q.Pop(); got != want || err != nil {
			t.Fatalf("Pop = %v, %v; want %s", got, err, want.ID)
		}
	}
	if got, err := q.Pop(); got != nil || err != nil {
		t.Fatalf("drained: %v, %v", got, err)
	}
	// Chunks queued before End come first; the error then sticks.
	q.Push(c)
	q.End(io.EOF)
	q.End(errors.New("later"))
	if !q.Ended() {
		t.Fatal("Ended is false after End")
	}
	if got, err := q.Pop(); got != c || err != nil {
		t.Fatalf("Pop = %v, %v; want c", got, err)
	}
	for range 3 {
		if got, err := q.Pop(); got != nil || err != io.EOF {
			t.Fatalf("Pop = %v, %v; want io.EOF", got, err)
		}
	}
}

// The queue's storage is reused: a steady stream of one-event batches
// allocates nothing in the queue itself.
func TestChunkQueueReusesStorage(t *testing.T) {
	var q ChunkQueue
	c := &openai.ChatChunk{}
	q.Push(c)
	q.Pop()
	q.Pop()
	allocs := testing.AllocsPerRun(100, func() {
		q.Push(c)
		q.Push(c)
		q.Pop()
		q.Pop()
		q.Pop()
	})
	if allocs > 0 {
		t.Errorf("%v allocs per batch", allocs)
	}
}
