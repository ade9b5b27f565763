package gemini

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	json "github.com/go-json-experiment/json/v1"
	wire "tollgate.dev/tollgate/dataplane/schema/gemini"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

// maxCandidates bounds the candidate index a stream may use (Gemini allows
// candidateCount up to 8); a larger index is a malformed stream.
const maxCandidates = 64

// ChatStream translates a streamGenerateContent?alt=sse body. Each SSE
// event is a whole GenerateContentResponse; it becomes one chunk per run of
// same-kind parts (reasoning, content, each function call, which Gemini
// sends whole, so id, name and complete arguments go in one delta) plus a
// finish chunk per candidate. Usage (cumulative in Gemini, so the last one
// wins) is returned after upstream's end of stream.
func (Translator) ChatStream(body io.Reader, _ translate.Target, meta translate.StreamMeta) translate.ChunkReader {
	return NewStreamReader(body, meta)
}

// NewStreamReader returns the chunk reader behind ChatStream.
func NewStreamReader(body io.Reader, meta translate.StreamMeta) translate.ChunkReader {
	return &streamReader{src: sse.NewReader(body, 0), meta: meta, ids: newCallIDs(meta.ID)}
}

type candidateState struct {
	started, finished, hasCalls, sentSignature bool
	calls                                      int
}

type streamReader struct {
	src   *sse.Reader
	meta  translate.StreamMeta
	ids   *callIDs
	cands []candidateState
	usage *openai.Usage
	out   translate.ChunkQueue
	resp  wire.GenerateContentResponse
}

// Next implements translate.ChunkReader.
func (s *streamReader) Next() (*openai.ChatChunk, error) {
	for {
		if c, err := s.out.Pop(); c != nil || err != nil {
			return c, err
		}
		ev, err := s.src.Next()
		if err != nil {
			s.out.End(s.end(err))
			continue
		}
		data := bytes.TrimSpace(ev.Data)
		if len(data) == 0 {
			continue
		}
		s.resp = wire.GenerateContentResponse{}
		if err := json.Unmarshal(data, &s.resp); err != nil {
			s.out.End(malformed("stream event"))
			continue
		}
		if s.resp.Error != nil {
			s.out.End(statusError(0, nil, s.resp.Error))
			continue
		}
		if err := s.translate(&s.resp); err != nil {
			s.out.End(err)
		}
	}
}

// end decides what the end of the upstream body means: a clean end only if
// something was answered and every candidate that started has finished;
// the usage chunk is queued before io.EOF.
func (s *streamReader) end(err error) error {
	if !errors.Is(err, io.EOF) {
		if errors.Is(err, sse.ErrEventTooLarge) {
			return malformed("stream: event too large")
		}
		return err
	}
	if len(s.cands) == 0 {
		return io.ErrUnexpectedEOF
	}
	for i := range s.cands {
		if s.cands[i].started && !s.cands[i].finished {
			return io.ErrUnexpectedEOF
		}
	}
	if s.usage != nil {
		s.out.Push(&openai.ChatChunk{
			ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
			Choices: []openai.ChunkChoice{}, Usage: s.usage,
		})
	}
	return io.EOF
}

func (s *streamReader) state(index int) (*candidateState, error) {
	if index < 0 || index >= maxCandidates {
		return nil, malformed(fmt.Sprintf("stream: candidate index %d", index))
	}
	for len(s.cands) <= index {
		s.cands = append(s.cands, candidateState{})
	}
	return &s.cands[index], nil
}

// translate queues the chunks of one upstream event.
func (s *streamReader) translate(r *wire.GenerateContentResponse) error {
	if r.UsageMetadata != nil {
		s.usage = convertUsage(r.UsageMetadata)
	}
	if len(r.Candidates) == 0 && r.PromptFeedback != nil && r.PromptFeedback.BlockReason != "" {
		st, _ := s.state(0)
		if !st.finished {
			empty := ""
			s.emit(0, st, openai.Delta{Content: &empty}, "")
			s.finish(0, st, openai.FinishContentFilter)
		}
		return nil
	}
	for i := range r.Candidates {
		c := &r.Candidates[i]
		st, err := s.state(c.Index)
		if err != nil {
			return err
		}
		if st.finished {
			continue
		}
		if c.Content != nil {
			if err := s.parts(c.Index, st, c.Content.Parts); err != nil {
				return err
			}
		}
		if c.FinishReason != "" {
			s.finish(c.Index, st, finishReason(c.FinishReason, st.hasCalls))
		}
	}
	return nil
}

// parts queues deltas for one candidate's parts, merging consecutive text
// (or thought) parts into one delta. A function call without a name is a
// malformed stream: no client could answer it.
func (s *streamReader) parts(index int, st *candidateState, parts []wire.Part) error {
	var last *openai.Delta
	lastKind := 0 // 1 content, 2 reasoning
	for i := range parts {
		p := &parts[i]
		var sig *string
		if p.ThoughtSignature != "" && !st.sentSignature {
			st.sentSignature = true
			v := p.ThoughtSignature
			sig = &v
		}
		switch {
		case p.FunctionCall != nil:
			if p.FunctionCall.Name == "" {
				return malformed("stream: function call without a name")
			}
			idx := st.calls
			st.calls++
			st.hasCalls = true
			tc := toolCall(p.FunctionCall, p.ThoughtSignature, s.ids, &idx)
			last = s.emit(index, st, openai.Delta{ToolCalls: []openai.ToolCall{tc}, ReasoningSignature: sig}, "")
			lastKind = 0
			continue
		case p.Text != "" && p.Thought && lastKind == 2:
			*last.ReasoningContent += p.Text
		case p.Text != "" && !p.Thought && lastKind == 1:
			*last.Content += p.Text
		case p.Text != "" && p.Thought:
			v := p.Text
			last = s.emit(index, st, openai.Delta{ReasoningContent: &v}, "")
			lastKind = 2
		case p.Text != "":
			v := p.Text
			last = s.emit(index, st, openai.Delta{Content: &v}, "")
			lastKind = 1
		case sig != nil:
			last = s.emit(index, st, openai.Delta{}, "")
			lastKind = 0
		}
		if sig != nil {
			last.ReasoningSignature = sig
		}
	}
	return nil
}

// emit queues one chunk for candidate index and returns its delta, so
// later parts of the same event can extend it. The first chunk of a
// candidate carries the assistant role.
func (s *streamReader) emit(index int, st *candidateState, d openai.Delta, finish string) *openai.Delta {
	if !st.started {
		st.started = true
		d.Role = openai.RoleAssistant
	}
	ch := &openai.ChatChunk{
		ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
		Choices: []openai.ChunkChoice{{Index: index, Delta: d}},
	}
	if finish != "" {
		f := finish
		ch.Choices[0].FinishReason = &f
	}
	s.out.Push(ch)
	return &ch.Choices[0].Delta
}

func (s *streamReader) finish(index int, st *candidateState, reason string) {
	s.emit(index, st, openai.Delta{}, reason)
	st.finished = true
}
