package openai

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/sse"
	"tollgate.dev/tollgate/dataplane/translate"
)

// ChatStream translates a chat.completion.chunk SSE stream. The format is
// already the canonical one, so this is mostly passthrough with the
// quirks of each server normalised to the translate.ChunkReader contract:
//
//   - every chunk gets meta's id, created and model;
//   - chunks with empty choices are dropped (Azure's prompt_filter_results
//     and content-filter annotations), and so are deltas that say nothing
//     (a repeated role, Azure's trailing content_filter_results);
//   - the role appears on each choice's first delta only, added if missing;
//   - a tool call's id, type and name stay in its first delta (generated
//     when the server sends no id), later deltas carry the index alone;
//   - one finish_reason per choice: later ones are dropped, a missing one
//     is added at [DONE] ("tool_calls" if the choice called tools), and
//     "stop" after tool calls becomes "tool_calls";
//   - "reasoning" (vLLM, OpenRouter) becomes reasoning_content;
//   - usage, wherever it came (a usage-only chunk, or attached to content
//     chunks by vLLM's continuous usage stats: the last one wins), is
//     returned once, last, as a chunk with empty choices;
//   - an error event ({"error":...} data or "event: error") is returned as
//     *openai.APIError; a stream that ends before "data: [DONE]" is
//     io.ErrUnexpectedEOF.
func (t *Translator) ChatStream(body io.Reader, _ translate.Target, meta translate.StreamMeta) translate.ChunkReader {
	return NewStreamReader(body, t.flavor, meta)
}

// NewStreamReader returns the chunk reader behind ChatStream.
func NewStreamReader(body io.Reader, f Flavor, meta translate.StreamMeta) translate.ChunkReader {
	return newStreamReader(body, f, meta)
}

func newStreamReader(body io.Reader, f Flavor, meta translate.StreamMeta) *streamReader {
	return &streamReader{src: sse.NewReader(body, 0), flavor: f, meta: meta, ids: newCallIDs(meta.ID)}
}

type choiceState struct {
	started, finished, hasCalls bool
	calls                       int // tool call indexes seen: [0, calls)
}

type streamReader struct {
	src    *sse.Reader
	flavor Flavor
	meta   translate.StreamMeta
	ids    callIDs
	states []choiceState
	usage  *openai.Usage
	out    translate.ChunkQueue
	wire   wireChunk
	// dec is reused for every event: unlike json.Unmarshal it keeps its
	// scanner stack and error context between values, which is most of
	// encoding/json's per-call allocations.
	dec   *json.Decoder
	event eventBytes
	// changed is set when normalising the current event altered or left
	// out anything in it (see nativeStream).
	changed bool
}

// eventBytes feeds one event's data to the reused decoder.
type eventBytes struct{ b []byte }

func (e *eventBytes) Read(p []byte) (int, error) {
	if len(e.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, e.b)
	e.b = e.b[n:]
	return n, nil
}

// wireChunk is one upstream chunk. It is reused across events, and its
// field types avoid allocating for what is thrown away or repeated on
// every chunk (id, model, "logprobs":null, system_fingerprint).
type wireChunk struct {
	Choices           []wireChunkChoice `json:"choices"`
	Usage             *openai.Usage     `json:"usage"`
	SystemFingerprint stickyString      `json:"system_fingerprint"`
	Error             json.RawMessage   `json:"error"`

	// envelope is where fastChunk found the values of id, object, created
	// and model (chunkEnvelope order; end 0 when absent), and
	// envelopeRepeated whether one of them came twice or in other case.
	envelope         [4]span
	envelopeRepeated bool
}

// span is a value's byte range in an event.
type span struct{ start, end int }

type wireChunkChoice struct {
	Index        int        `json:"index"`
	Delta        wireDelta  `json:"delta"`
	FinishReason optString  `json:"finish_reason"`
	Logprobs     optRawJSON `json:"logprobs"`
}

type wireDelta struct {
	Role               optString         `json:"role"`
	Content            optString         `json:"content"`
	ReasoningContent   optString         `json:"reasoning_content"`
	Reasoning          optString         `json:"reasoning"`
	Refusal            optString         `json:"refusal"`
	ReasoningSignature optString         `json:"reasoning_signature"`
	ToolCalls          []openai.ToolCall `json:"tool_calls"`
	// unmodelled is set (by fastChunk only) when the delta carries a field
	// the canonical one lacks, with a value (annotations, audio): the chunk
	// says something, which a native stream forwards.
	unmodelled bool
}

// Next implements translate.ChunkReader.
func (s *streamReader) Next() (*openai.ChatChunk, error) {
	c, _, err := s.next()
	return c, err
}

// next is Next that also returns the event's data when the chunk says
// exactly what the event says (pristine: nothing normalised, added or left
// out but the envelope), for nativeStream; the data is valid until the
// next call.
func (s *streamReader) next() (*openai.ChatChunk, []byte, error) {
	for {
		if c, err := s.out.Pop(); c != nil || err != nil {
			return c, nil, err
		}
		ev, err := s.src.Next()
		if err != nil {
			s.out.End(s.broken(err))
			continue
		}
		data := bytes.TrimSpace(ev.Data)
		if len(data) == 0 {
			continue
		}
		if ev.Type == "error" {
			s.out.End(errorFromEvent(eventErrorData(data)))
			continue
		}
		if bytes.Equal(data, doneMarker) {
			s.out.End(s.done())
			continue
		}
		c, pristine, err := s.chunk(data)
		if err != nil {
			s.out.End(err)
			continue
		}
		if c != nil {
			if !pristine {
				data = nil
			}
			return c, data, nil
		}
	}
}

var doneMarker = []byte("[DONE]")

// broken maps a read failure before [DONE].
func (s *streamReader) broken(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return io.ErrUnexpectedEOF
	case errors.Is(err, sse.ErrEventTooLarge):
		return malformed(s.flavor, "stream event exceeds the size limit")
	}
	return err
}

// done queues what [DONE] implies: a finish chunk for every choice that
// has none, then the usage chunk; the stream then ends with io.EOF.
func (s *streamReader) done() error {
	started := false
	for i := range s.states {
		st := &s.states[i]
		if !st.started {
			continue
		}
		started = true
		if st.finished {
			continue
		}
		st.finished = true
		reason := openai.FinishStop
		if st.hasCalls {
			reason = openai.FinishToolCalls
		}
		b := s.box()
		b.finish = reason
		b.ch[0] = openai.ChunkChoice{Index: i, FinishReason: &b.finish}
		s.out.Push(&b.c)
	}
	if !started {
		return malformed(s.flavor, "stream ended without any choice")
	}
	if s.usage != nil {
		fillTotal(s.usage)
		s.out.Push(&openai.ChatChunk{
			ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
			Choices: []openai.ChunkChoice{}, Usage: s.usage,
		})
	}
	return io.EOF
}

// chunkBox holds a one-choice chunk and the strings its pointers refer to,
// so the common chunk costs one allocation plus its text.
type chunkBox struct {
	c                                   openai.ChatChunk
	ch                                  [1]openai.ChunkChoice
	content, reasoning, refusal, finish string
}

func (s *streamReader) box() *chunkBox {
	b := &chunkBox{}
	b.c = openai.ChatChunk{ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
		Choices: b.ch[:]}
	return b
}

// chunk decodes and normalises one data event; nil means nothing is left
// to send. pristine reports a chunk that says exactly what the event does:
// decoded on the fast path, nothing normalised or left out, no usage.
func (s *streamReader) chunk(data []byte) (c *openai.ChatChunk, pristine bool, err error) {
	w := &s.wire
	w.reset()
	fast := fastChunk(data, w)
	if !fast {
		w.reset()
		if err := s.decode(data); err != nil {
			return nil, false, err
		}
	}
	s.changed = false
	c, err = s.translate()
	return c, fast && !s.changed && w.Usage == nil, err
}

// reset empties w for the next event, keeping its choice slice's storage.
func (w *wireChunk) reset() {
	cs := w.Choices[:cap(w.Choices)]
	clear(cs) // encoding/json decodes into reused elements without zeroing them
	w.Choices = cs[:0]
	w.Usage = nil
	w.Error = nil
	w.SystemFingerprint.set = false
	w.envelope, w.envelopeRepeated = [4]span{}, false
}

// decode is the general path: encoding/json with the reused decoder.
func (s *streamReader) decode(data []byte) error {
	w := &s.wire
	if s.dec == nil {
		s.dec = json.NewDecoder(&s.event)
	}
	s.event.b = data
	start := s.dec.InputOffset()
	if err := s.dec.Decode(w); err != nil || s.dec.InputOffset()-start != int64(len(data)) {
		// The event must be exactly one value (else bytes would be left
		// for the next one). Decoder errors are sticky; the stream ends
		// here anyway.
		return malformed(s.flavor, "stream event is not a chat.completion.chunk")
	}
	return nil
}

// translate normalises the decoded event into the chunk to send, if any.
func (s *streamReader) translate() (*openai.ChatChunk, error) {
	w := &s.wire
	if hasValue(w.Error) {
		return nil, errorFromEvent(eventError(w.Error))
	}
	if w.Usage != nil {
		s.usage = w.Usage
	}
	var out *openai.ChatChunk
	for i := range w.Choices {
		wc := &w.Choices[i]
		keep, err := s.normalize(wc)
		if err != nil {
			return nil, err
		}
		if !keep {
			s.changed = true
			continue
		}
		if out == nil && i == len(w.Choices)-1 {
			// The common case: one choice in the event.
			b := s.box()
			s.fill(&b.ch[0], wc, &b.content, &b.reasoning, &b.refusal, &b.finish)
			out = &b.c
			break
		}
		if out == nil {
			out = &openai.ChatChunk{ID: s.meta.ID, Object: openai.ObjectChatCompletionChunk, Created: s.meta.Created, Model: s.meta.Model,
				Choices: make([]openai.ChunkChoice, 0, len(w.Choices)-i)}
		}
		out.Choices = append(out.Choices, openai.ChunkChoice{})
		s.fill(&out.Choices[len(out.Choices)-1], wc, new(string), new(string), new(string), new(string))
	}
	if out != nil && w.SystemFingerprint.set {
		out.SystemFingerprint = w.SystemFingerprint.v
	}
	return out, nil
}

// normalize applies the per-choice rules to wc and reports whether it
// still says anything.
func (s *streamReader) normalize(wc *wireChunkChoice) (bool, error) {
	if wc.Index < 0 || wc.Index >= maxChoiceIndexInRun {
		return false, malformed(s.flavor, fmt.Sprintf("stream: choice index %d out of range", wc.Index))
	}
	for len(s.states) <= wc.Index {
		s.states = append(s.states, choiceState{})
	}
	st := &s.states[wc.Index]
	if st.finished {
		return false, nil
	}
	d := &wc.Delta
	if d.Reasoning.set {
		s.changed = true // moved to reasoning_content, or dropped
		if !d.ReasoningContent.set {
			d.ReasoningContent = d.Reasoning
		}
	}
	for j := range d.ToolCalls {
		if err := s.toolCall(wc.Index, st, &d.ToolCalls[j]); err != nil {
			return false, err
		}
	}
	if wc.FinishReason.set {
		v := normalizeFinish(wc.FinishReason.v, st.hasCalls)
		s.changed = s.changed || v != wc.FinishReason.v
		wc.FinishReason.v = v
	}
	says := d.Content.set || d.ReasoningContent.set || d.Refusal.set || d.ReasoningSignature.set ||
		len(d.ToolCalls) > 0 || wc.FinishReason.set || wc.Logprobs.raw != nil || d.unmodelled
	if st.started && !says {
		return false, nil
	}
	if st.started {
		s.changed = s.changed || d.Role.set // a repeated role is dropped
		d.Role = optString{}
	} else {
		s.changed = s.changed || d.Role.v != openai.RoleAssistant
		st.started = true
		d.Role = optString{v: openai.RoleAssistant, set: true}
	}
	if wc.FinishReason.set {
		st.finished = true
	}
	return true, nil
}

// toolCall keeps id, type and name in a call's first delta only, and
// gives calls without an index (some compatible servers) the next one. A
// call whose first delta has no name cannot be forwarded: the stream is
// malformed.
func (s *streamReader) toolCall(choice int, st *choiceState, tc *openai.ToolCall) error {
	st.hasCalls = true
	if tc.Index == nil {
		s.changed = true
		i := st.calls - 1
		if tc.ID != "" || tc.Function.Name != "" || i < 0 {
			i = st.calls
		}
		tc.Index = &i
	}
	i := *tc.Index
	if i < 0 || i >= maxChoiceIndexInRun {
		return malformed(s.flavor, fmt.Sprintf("stream: tool call index %d out of range", i))
	}
	if i >= st.calls {
		if tc.Function.Name == "" {
			return malformed(s.flavor, fmt.Sprintf("stream: tool call %d starts without a function name", i))
		}
		st.calls = i + 1
		if tc.ID == "" {
			s.changed = true
			tc.ID = s.ids.id(choice, i)
		}
		s.changed = s.changed || tc.Type != "function"
		tc.Type = "function"
		return nil
	}
	s.changed = s.changed || tc.ID != "" || tc.Type != "" || tc.Function.Name != ""
	tc.ID, tc.Type, tc.Function.Name = "", "", ""
	return nil
}

// fill writes a normalised wire choice into out; the string pointers are
// where the delta's optional strings are stored.
func (s *streamReader) fill(out *openai.ChunkChoice, wc *wireChunkChoice, content, reasoning, refusal, finish *string) {
	d := &wc.Delta
	out.Index = wc.Index
	out.Delta = openai.Delta{Role: d.Role.v, ToolCalls: d.ToolCalls}
	if d.Content.set {
		*content = d.Content.v
		out.Delta.Content = content
	}
	if d.ReasoningContent.set {
		*reasoning = d.ReasoningContent.v
		out.Delta.ReasoningContent = reasoning
	}
	if d.Refusal.set {
		*refusal = d.Refusal.v
		out.Delta.Refusal = refusal
	}
	if d.ReasoningSignature.set {
		sig := d.ReasoningSignature.v
		out.Delta.ReasoningSignature = &sig
	}
	if wc.FinishReason.set {
		*finish = wc.FinishReason.v
		out.FinishReason = finish
	}
	out.Logprobs = wc.Logprobs.raw
}

// eventErrorData reads the data of an "event: error": an {"error":...}
// envelope or the error object itself.
func eventErrorData(data []byte) upstreamError {
	if ue, ok := parseUpstreamError(data); ok {
		return ue
	}
	return upstreamError{}
}

// optString is a JSON string that may be absent or null (set is false
// then). Strings without escapes are taken without encoding/json's
// reflection, and "assistant" without allocating.
type optString struct {
	v   string
	set bool
}

func (o *optString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		*o = optString{}
		if len(b) > 0 && b[0] != 'n' {
			return errors.New("expected a string")
		}
		return nil
	}
	o.set = true
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		return json.Unmarshal(b, &o.v)
	}
	if string(inner) == openai.RoleAssistant {
		o.v = openai.RoleAssistant
		return nil
	}
	o.v = string(inner)
	return nil
}

// stickyString is a string field repeated on every chunk with the same
// value (system_fingerprint): it allocates only when the value changes.
type stickyString struct {
	v   string
	set bool
}

func (s *stickyString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] != '"' {
		s.set = false
		return nil
	}
	s.set = true
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') >= 0 {
		return json.Unmarshal(b, &s.v)
	}
	if string(inner) != s.v {
		s.v = string(inner)
	}
	return nil
}

// optRawJSON keeps a JSON value, but not null (OpenAI sends
// "logprobs":null on every chunk).
type optRawJSON struct{ raw json.RawMessage }

func (o *optRawJSON) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || b[0] == 'n' {
		o.raw = nil
		return nil
	}
	o.raw = append(json.RawMessage(nil), b...)
	return nil
}
