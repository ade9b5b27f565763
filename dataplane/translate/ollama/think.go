package ollama

import "strings"

const (
	thinkOpen  = "<think>"
	thinkClose = "</think>"
)

// thinkSplitter moves a leading <think>...</think> block out of content.
// Ollama separates thinking into message.thinking when think is set, but
// when a request leaves think unset, models whose template does not parse
// it (older Ollama, DeepSeek-R1 distills, QwQ) stream the tags inside
// content; reasoning must never reach a client as content. It works on
// stream deltas split anywhere, holding back only what may be a partial tag.
type thinkSplitter struct {
	state   uint8 // 0 before content, 1 inside think, 2 trimming after it, 3 passthrough
	pending string
}

// feed returns the reasoning and content parts of the next piece of content.
func (t *thinkSplitter) feed(s string) (reasoning, content string) {
	switch t.state {
	case 3:
		return "", s
	case 0:
		buf := t.pending + s
		trimmed := strings.TrimLeft(buf, " \t\r\n")
		switch {
		case strings.HasPrefix(trimmed, thinkOpen):
			t.state, t.pending = 1, ""
			return t.feed(trimmed[len(thinkOpen):])
		case len(trimmed) < len(thinkOpen) && strings.HasPrefix(thinkOpen, trimmed):
			t.pending = buf // "", whitespace or a partial "<think>": wait
			return "", ""
		}
		t.state, t.pending = 3, ""
		return "", buf
	case 1:
		buf := t.pending + s
		if i := strings.Index(buf, thinkClose); i >= 0 {
			t.state, t.pending = 2, ""
			_, c := t.feed(buf[i+len(thinkClose):])
			return buf[:i], c
		}
		k := partialSuffix(buf, thinkClose)
		t.pending = buf[len(buf)-k:]
		return buf[:len(buf)-k], ""
	default: // 2: drop the blank lines between </think> and the answer
		s = strings.TrimLeft(s, " \t\r\n")
		if s != "" {
			t.state = 3
		}
		return "", s
	}
}

// flush returns what was held back when the content ends.
func (t *thinkSplitter) flush() (reasoning, content string) {
	p := t.pending
	t.pending = ""
	switch t.state {
	case 0:
		if strings.TrimSpace(p) == "" {
			return "", ""
		}
		return "", p
	case 1:
		return p, ""
	}
	return "", ""
}

// partialSuffix returns the length of the longest suffix of s that is a
// proper prefix of tag.
func partialSuffix(s, tag string) int {
	for k := min(len(tag)-1, len(s)); k > 0; k-- {
		if strings.HasSuffix(s, tag[:k]) {
			return k
		}
	}
	return 0
}
