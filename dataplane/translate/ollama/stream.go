package ollama

import (
	"encoding/json"
	"errors"
	"io"

	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ChatStream translates an /api/chat NDJSON stream. Each line with text
// becomes one chunk (thinking as reasoning_content, content as content);
// tool calls, which Ollama sends whole, become one delta each with id,
// name and complete arguments. The line with "done": true yields the
// finish chunk and then the usage chunk; a stream that ends without it is
// io.ErrUnexpectedEOF, and an {"error": ...} line is an *openai.APIError.
func (Translator) ChatStream(body io.Reader, _ translate.Target, meta translate.StreamMeta) translate.ChunkReader {
	return NewStreamReader(body, meta)
}

// NewStreamReader returns the chunk reader behind ChatStream.
func NewStreamReader(body io.Reader, meta translate.StreamMeta) translate.ChunkReader {
	return &streamReader{src: sse.NewLineReader(body, 0), meta: meta, ids: newCallIDs(meta.ID)}
}

type streamReader struct {
	src     *sse.LineReader
	meta    translate.StreamMeta
	ids     callIDs
	started bool
	calls   int
	queue   []*openai.ChatChunk
	head    int
	err     error
	line    ChatResponse
}

// Next implements translate.ChunkReader.
func (s *streamReader) Next() (*openai.ChatChunk, error) {
	for {
		if s.head < len(s.queue) {
			c := s.queue[s.head]
			s.queue[s.head] = nil
			s.head++
			return c, nil
		}
		s.queue, s.head = s.queue[:0], 0
		if s.err != nil {
			return nil, s.err
		}
		line, err := s.src.Next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				s.err = io.ErrUnexpectedEOF
			case errors.Is(err, sse.ErrEventTooLarge):
				s.err = malformed("stream line exceeds the size limit")
			default:
				s.err = err
			}
			continue
		}
		s.line = ChatResponse{}
		if err := json.Unmarshal(line, &s.line); err != nil {
			s.err = malformed("stream line is not an /api/chat answer")
			continue
		}
		if err := s.translate(&s.line); err != nil {
			s.err = err
		}
	}
}

// translate queues the chunks of one line.
func (s *streamReader) translate(r *ChatResponse) error {
	if hasValue(r.Error) {
		return streamError(r.Error)
	}
	m := &r.Message
	if m.Thinking != "" || m.Content != "" || len(m.ToolCalls) > 0 {
		c, ch := s.chunk()
		if m.Thinking != "" {
			v := m.Thinking
			ch.Delta.ReasoningContent = &v
		}
		if m.Content != "" {
			v := m.Content
			ch.Delta.Content = &v
		}
		for i := range m.ToolCalls {
			idx := s.calls
			tc, err := convertToolCall(&m.ToolCalls[i], s.ids, idx)
			if err != nil {
				return err
			}
			s.calls++
			tc.Index = &idx
			ch.Delta.ToolCalls = append(ch.Delta.ToolCalls, tc)
		}
		s.queue = append(s.queue, c)
	}
	if !r.Done {
		return nil
	}
	c, ch := s.chunk()
	f := finishReason(r.DoneReason, s.calls > 0)
	ch.FinishReason = &f
	s.queue = append(s.queue, c,
		&openai.ChatChunk{ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
			Choices: []openai.ChunkChoice{}, Usage: usage(r)})
	return io.EOF
}

// chunk returns a new one-choice chunk; the first carries the role.
func (s *streamReader) chunk() (*openai.ChatChunk, *openai.ChunkChoice) {
	c := &openai.ChatChunk{ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
		Choices: make([]openai.ChunkChoice, 1)}
	if !s.started {
		s.started = true
		c.Choices[0].Delta.Role = openai.RoleAssistant
	}
	return c, &c.Choices[0]
}
