package translate

import "tollgate.dev/tollgate/dataplane/schema/openai"

// ChunkQueue is the output side of a stream reader: the chunks one upstream
// event translated to, handed out one at a time, then a sticky terminal
// error (io.EOF at a clean end). The zero value is an empty queue.
//
// A reader's Next is a loop around it:
//
//	for {
//		if c, err := r.q.Pop(); c != nil || err != nil {
//			return c, err
//		}
//		// read one upstream event; Push its chunks, or End on failure or at
//		// the end of the stream
//	}
//
// Chunks pushed before End are still handed out before the error, so an
// event may queue its chunks and then end the stream.
type ChunkQueue struct {
	queue []*openai.ChatChunk
	head  int
	err   error
}

// Push queues c.
func (q *ChunkQueue) Push(c *openai.ChatChunk) { q.queue = append(q.queue, c) }

// End sets the terminal error, returned by every Pop once the queue is
// drained. The first one sticks: later calls are ignored.
func (q *ChunkQueue) End(err error) {
	if q.err == nil {
		q.err = err
	}
}

// Ended reports whether End was called.
func (q *ChunkQueue) Ended() bool { return q.err != nil }

// Pop returns the next queued chunk; once the queue is drained, the
// terminal error, if any. (nil, nil) means the reader must read upstream.
// The queue's storage is reused from one event to the next.
func (q *ChunkQueue) Pop() (*openai.ChatChunk, error) {
	if q.head < len(q.queue) {
		c := q.queue[q.head]
		q.queue[q.head] = nil
		q.head++
		return c, nil
	}
	q.queue, q.head = q.queue[:0], 0
	return nil, q.err
}
