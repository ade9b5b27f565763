package bedrock

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	json "github.com/go-json-experiment/json/v1"
	"tollgate.dev/tollgate/dataplane/eventstream"
	wire "tollgate.dev/tollgate/dataplane/schema/bedrock"
	"tollgate.dev/tollgate/dataplane/schema/openai"
	"tollgate.dev/tollgate/dataplane/translate"
	"tollgate.dev/tollgate/dataplane/translate/anthropic"
)

// Event-stream header names and message types.
const (
	headerMessageType   = ":message-type"
	headerEventType     = ":event-type"
	headerExceptionType = ":exception-type"
	headerErrorCode     = ":error-code"
	headerErrorMessage  = ":error-message"

	messageEvent     = "event"
	messageException = "exception"
	messageError     = "error"
)

// ChatStream implements translate.Translator. Nothing is read from body
// before the first Next.
func (tr *Translator) ChatStream(body io.Reader, t translate.Target, meta translate.StreamMeta) translate.ChunkReader {
	return newStream(body, meta)
}

type blockKind uint8

const (
	blockTool blockKind = iota + 1
	blockJSON           // the JSON-mode answer tool: streamed as content
)

type blockState struct {
	kind      blockKind
	toolIndex int
	// input is set once a non-empty input fragment was sent; a tool block
	// that ends without one gets "{}" so clients always receive a JSON
	// object, as ChatResponse gives.
	input bool
}

// stream translates ConverseStream events to chat.completion.chunks:
// messageStart gives the role chunk, text / reasoning / tool-input deltas
// give one chunk each, contentBlockStart of a tool use gives the tool call's
// id and name, messageStop the finish_reason and metadata the usage chunk.
type stream struct {
	es   *eventstream.Reader
	meta translate.StreamMeta

	blocks    map[int]blockState
	nextTool  int
	roleSent  bool
	stopped   bool // messageStop seen
	done      bool // metadata delivered: the stream is complete
	toolCalls bool
	err       error
}

func newStream(body io.Reader, meta translate.StreamMeta) *stream {
	return &stream{es: eventstream.NewReader(body, 0), meta: meta}
}

// errIncomplete wraps io.ErrUnexpectedEOF when the stream ended
// before messageStop and metadata.
var errIncomplete = fmt.Errorf("bedrock stream ended before its metadata event: %w", io.ErrUnexpectedEOF)

// Next implements translate.ChunkReader.
func (s *stream) Next() (*openai.ChatChunk, error) {
	if s.err != nil {
		return nil, s.err
	}
	if s.done {
		s.err = io.EOF
		return nil, io.EOF
	}
	for {
		m, err := s.es.Next()
		if err != nil {
			err = streamReadError(err)
			s.err = err
			return nil, err
		}
		c, err := s.handle(m)
		if err != nil {
			s.err = err
			return nil, err
		}
		if c != nil {
			return c, nil
		}
	}
}

// streamReadError maps a failure to read the next message: a cut stream is
// errIncomplete, corrupt framing (checksums, lengths, headers) a malformed
// upstream answer; transport errors pass through.
func streamReadError(err error) error {
	var de *eventstream.DecodeError
	switch {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return errIncomplete
	case errors.Is(err, eventstream.ErrMessageTooLarge):
		return malformed("stream message exceeds the size limit")
	case errors.As(err, &de):
		return malformed(fmt.Sprintf("malformed event stream at byte %d", de.Offset))
	}
	return fmt.Errorf("bedrock stream: %w", err)
}

func (s *stream) handle(m *eventstream.Message) (*openai.ChatChunk, error) {
	switch m.StringHeader(headerMessageType) {
	case messageEvent:
	case messageException:
		var eb wire.ErrorBody
		_ = json.Unmarshal(m.Payload, &eb)
		msg := eb.Text()
		if msg == "" {
			msg = eb.OriginalMessage
		}
		if msg == "" {
			msg = "bedrock stream exception"
		}
		e := exceptionError(m.StringHeader(headerExceptionType), http.StatusBadGateway, msg)
		if eb.OriginalStatusCode == http.StatusTooManyRequests && e.Status >= 500 {
			// A model stream error that was the model's own throttling:
			// the client should back off and retry, not see a bad gateway.
			code := ""
			if e.Code != nil {
				code = *e.Code
			}
			e = openai.NewError(http.StatusTooManyRequests, openai.TypeRateLimit, code, "", e.Message)
		}
		return nil, e
	case messageError:
		return nil, exceptionError(m.StringHeader(headerErrorCode), http.StatusBadGateway, m.StringHeader(headerErrorMessage))
	default:
		return nil, nil // unknown message types are skipped
	}

	ev := m.StringHeader(headerEventType)
	if s.stopped && ev != wire.EventMetadata {
		// Nothing may follow the finish_reason chunk but the usage chunk.
		return nil, nil
	}
	switch ev {
	case wire.EventMessageStart:
		if s.roleSent {
			return nil, nil
		}
		empty := ""
		return s.chunk(openai.Delta{Content: &empty}, nil), nil

	case wire.EventContentBlockStart:
		var e wire.ContentBlockStartEvent
		if err := decodeEvent(ev, m.Payload, &e); err != nil {
			return nil, err
		}
		tu := e.Start.ToolUse
		if tu == nil {
			return nil, nil
		}
		if tu.ToolUseID == "" || tu.Name == "" {
			return nil, malformed(fmt.Sprintf("malformed stream: tool use in content block %d has no id or name", e.ContentBlockIndex))
		}
		if s.blocks == nil {
			s.blocks = make(map[int]blockState, 2)
		}
		if tu.Name == anthropic.JSONToolName {
			s.blocks[e.ContentBlockIndex] = blockState{kind: blockJSON}
			return nil, nil
		}
		idx := s.nextTool
		s.nextTool++
		s.toolCalls = true
		s.blocks[e.ContentBlockIndex] = blockState{kind: blockTool, toolIndex: idx}
		return s.chunk(openai.Delta{ToolCalls: []openai.ToolCall{{
			Index:    &idx,
			ID:       tu.ToolUseID,
			Type:     "function",
			Function: openai.FunctionCall{Name: tu.Name},
		}}}, nil), nil

	case wire.EventContentBlockDelta:
		var e wire.ContentBlockDeltaEvent
		if err := decodeEvent(ev, m.Payload, &e); err != nil {
			return nil, err
		}
		d := &e.Delta
		switch {
		case d.Text != nil:
			if *d.Text == "" {
				return nil, nil
			}
			return s.chunk(openai.Delta{Content: d.Text}, nil), nil
		case d.ToolUse != nil:
			b, ok := s.blocks[e.ContentBlockIndex]
			if !ok {
				return nil, malformed(fmt.Sprintf("malformed stream: tool input for content block %d, which was not started as a tool use", e.ContentBlockIndex))
			}
			if d.ToolUse.Input == "" {
				return nil, nil
			}
			b.input = true
			s.blocks[e.ContentBlockIndex] = b
			if b.kind == blockJSON {
				return s.chunk(openai.Delta{Content: &d.ToolUse.Input}, nil), nil
			}
			idx := b.toolIndex
			return s.chunk(openai.Delta{ToolCalls: []openai.ToolCall{{
				Index:    &idx,
				Function: openai.FunctionCall{Arguments: d.ToolUse.Input},
			}}}, nil), nil
		case d.ReasoningContent != nil:
			rc := d.ReasoningContent
			switch {
			case rc.Text != nil && *rc.Text != "":
				return s.chunk(openai.Delta{ReasoningContent: rc.Text}, nil), nil
			case rc.Signature != nil && *rc.Signature != "":
				return s.chunk(openai.Delta{ReasoningSignature: rc.Signature}, nil), nil
			}
		}
		return nil, nil

	case wire.EventContentBlockStop:
		var e wire.ContentBlockStopEvent
		if err := decodeEvent(ev, m.Payload, &e); err != nil {
			return nil, err
		}
		b, ok := s.blocks[e.ContentBlockIndex]
		if !ok || b.input {
			return nil, nil
		}
		b.input = true
		s.blocks[e.ContentBlockIndex] = b
		empty := "{}"
		if b.kind == blockJSON {
			return s.chunk(openai.Delta{Content: &empty}, nil), nil
		}
		idx := b.toolIndex
		return s.chunk(openai.Delta{ToolCalls: []openai.ToolCall{{
			Index:    &idx,
			Function: openai.FunctionCall{Arguments: empty},
		}}}, nil), nil

	case wire.EventMessageStop:
		var e wire.MessageStopEvent
		if err := decodeEvent(ev, m.Payload, &e); err != nil {
			return nil, err
		}
		if s.stopped {
			return nil, nil
		}
		s.stopped = true
		fr := finishReason(e.StopReason, s.toolCalls)
		return s.chunk(openai.Delta{}, &fr), nil

	case wire.EventMetadata:
		if !s.stopped {
			return nil, malformed("malformed stream: metadata event before messageStop")
		}
		var e wire.MetadataEvent
		if err := decodeEvent(ev, m.Payload, &e); err != nil {
			return nil, err
		}
		s.done = true
		u := convertUsage(e.Usage)
		if u == nil {
			s.err = io.EOF
			return nil, io.EOF
		}
		return &openai.ChatChunk{
			ID:      s.meta.ID,
			Object:  openai.ObjectChatCompletionChunk,
			Created: s.meta.Created,
			Model:   s.meta.Model,
			Choices: []openai.ChunkChoice{},
			Usage:   u,
		}, nil
	}
	return nil, nil // future event types carry nothing
}

// decodeEvent decodes an event's payload. The decoder's error is not
// quoted: it can echo payload bytes.
func decodeEvent(ev string, payload []byte, v any) error {
	if json.Unmarshal(payload, v) != nil {
		return malformed("malformed stream: " + ev + " event does not decode")
	}
	return nil
}

// chunk wraps a delta; the first chunk of the stream carries the role.
func (s *stream) chunk(d openai.Delta, finish *string) *openai.ChatChunk {
	if !s.roleSent {
		d.Role = openai.RoleAssistant
		s.roleSent = true
	}
	return &openai.ChatChunk{
		ID:      s.meta.ID,
		Object:  openai.ObjectChatCompletionChunk,
		Created: s.meta.Created,
		Model:   s.meta.Model,
		Choices: []openai.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}},
	}
}
