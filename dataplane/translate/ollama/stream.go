package ollama

import (
	"errors"
	"io"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ChatStream translates an /api/chat NDJSON stream. Each line with text
// becomes one chunk (thinking, and a leading <think> block in content, as
// reasoning_content; the rest as content);
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
	split   thinkSplitter
	out     translate.ChunkQueue
	line    streamLine
	// dec is reused for every line: unlike json.Unmarshal it keeps its
	// scanner stack and error context between values.
	dec   *json.Decoder
	event lineBytes
}

// streamLine is the part of a stream line the translator uses; model and
// created_at, repeated on every line, are skipped without allocating.
type streamLine struct {
	Message struct {
		Content   string     `json:"content"`
		Thinking  string     `json:"thinking"`
		ToolCalls []ToolCall `json:"tool_calls"`
	} `json:"message"`
	Done            bool            `json:"done"`
	DoneReason      string          `json:"done_reason"`
	PromptEvalCount int             `json:"prompt_eval_count"`
	EvalCount       int             `json:"eval_count"`
	Error           json.RawMessage `json:"error"`
}

// lineBytes feeds one line to the reused decoder.
type lineBytes struct{ b []byte }

func (l *lineBytes) Read(p []byte) (int, error) {
	if len(l.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, l.b)
	l.b = l.b[n:]
	return n, nil
}

// Next implements translate.ChunkReader.
func (s *streamReader) Next() (*openai.ChatChunk, error) {
	for {
		if c, err := s.out.Pop(); c != nil || err != nil {
			return c, err
		}
		line, err := s.src.Next()
		if err != nil {
			switch {
			case errors.Is(err, io.EOF):
				err = io.ErrUnexpectedEOF
			case errors.Is(err, sse.ErrEventTooLarge):
				err = malformed("stream line exceeds the size limit")
			}
			s.out.End(err)
			continue
		}
		s.line = streamLine{}
		if s.dec == nil {
			s.dec = json.NewDecoder(&s.event)
		}
		s.event.b = line
		start := s.dec.InputOffset()
		if err := s.dec.Decode(&s.line); err != nil || s.dec.InputOffset()-start != int64(len(line)) {
			// The line must be exactly one value (else bytes would be left
			// for the next one). Decoder errors are sticky; the stream
			// ends here anyway.
			s.out.End(malformed("stream line is not an /api/chat answer"))
			continue
		}
		if err := s.translate(&s.line); err != nil {
			s.out.End(err)
		}
	}
}

// translate queues the chunks of one line.
func (s *streamReader) translate(r *streamLine) error {
	if hasValue(r.Error) {
		return streamError(r.Error)
	}
	m := &r.Message
	reasoning, content := s.split.feed(m.Content)
	if r.Done {
		r2, c2 := s.split.flush()
		reasoning, content = reasoning+r2, content+c2
	}
	if m.Thinking != "" {
		reasoning = m.Thinking + reasoning
	}
	if reasoning != "" || content != "" || len(m.ToolCalls) > 0 {
		b := s.box()
		c, ch := &b.c, &b.ch[0]
		if reasoning != "" {
			b.reasoning = reasoning
			ch.Delta.ReasoningContent = &b.reasoning
		}
		if content != "" {
			b.content = content
			ch.Delta.Content = &b.content
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
		s.out.Push(c)
	}
	if !r.Done {
		return nil
	}
	c, ch := s.chunk()
	f := finishReason(r.DoneReason, s.calls > 0)
	ch.FinishReason = &f
	s.out.Push(c)
	s.out.Push(&openai.ChatChunk{ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
		Choices: []openai.ChunkChoice{}, Usage: &openai.Usage{PromptTokens: r.PromptEvalCount, CompletionTokens: r.EvalCount,
			TotalTokens: r.PromptEvalCount + r.EvalCount}})
	return io.EOF
}

// chunkBox holds a one-choice chunk and the strings its delta points to,
// so a streamed token costs one allocation plus its text.
type chunkBox struct {
	c                  openai.ChatChunk
	ch                 [1]openai.ChunkChoice
	content, reasoning string
}

// box returns a new one-choice chunk; the first carries the role.
func (s *streamReader) box() *chunkBox {
	b := &chunkBox{}
	b.c = openai.ChatChunk{ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
		Choices: b.ch[:]}
	if !s.started {
		s.started = true
		b.ch[0].Delta.Role = openai.RoleAssistant
	}
	return b
}

func (s *streamReader) chunk() (*openai.ChatChunk, *openai.ChunkChoice) {
	b := s.box()
	return &b.c, &b.ch[0]
}
