package ggufgen

import "fmt"

// Token types as llama.cpp defines them (llama_token_type).
const (
	tokenNormal  int32 = 1
	tokenUnknown int32 = 2
	tokenControl int32 = 3
	tokenByte    int32 = 6
)

// Special token ids.
const (
	UnknownID  = 0
	BOSID      = 1
	EOSID      = 2
	numSpecial = 3
)

// ChatTemplate is the ChatML template written as tokenizer.chat_template; llama-server both recognizes it
// by name and renders it with its Jinja engine.
const ChatTemplate = "{% for message in messages %}" +
	"{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}" +
	"{% endfor %}" +
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

// spaceMark is sentencepiece's word-boundary marker (U+2581).
const spaceMark = "\u2581"

var commonWords = []string{
	"the", "and", "of", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with",
	"his", "they", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not", "what",
	"all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she", "do",
	"how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so", "some",
	"her", "would", "make", "like", "him", "into", "time", "has", "look", "two", "more", "write", "go", "see",
	"number", "no", "way", "could", "people", "my", "than", "first", "water", "been", "call", "who", "its",
	"now", "find", "long", "down", "day", "did", "get", "come", "made", "may", "part", "hello", "world",
	"model", "test", "random", "token", "llama", "engine", "lab",
}

// vocab is the tokenizer written into the model.
type vocab struct {
	tokens []string
	scores []float32
	types  []int32
}

// buildVocab returns <unk>, <s>, </s>, the 256 byte tokens, then n word pieces: the space marker, the
// letters, common words with the space marker, and then synthetic letter combinations, all distinct.
func buildVocab(n int) vocab {
	v := vocab{}
	add := func(tok string, score float32, typ int32) {
		v.tokens = append(v.tokens, tok)
		v.scores = append(v.scores, score)
		v.types = append(v.types, typ)
	}
	add("<unk>", 0, tokenUnknown)
	add("<s>", 0, tokenControl)
	add("</s>", 0, tokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, tokenByte)
	}
	pieces := make([]string, 0, n)
	seen := make(map[string]bool, n)
	push := func(p string) bool {
		if len(pieces) == n {
			return false
		}
		if !seen[p] {
			seen[p] = true
			pieces = append(pieces, p)
		}
		return len(pieces) < n
	}
	fill := func() {
		if !push(spaceMark) {
			return
		}
		for c := 'a'; c <= 'z'; c++ {
			if !push(string(c)) {
				return
			}
		}
		for _, w := range commonWords {
			if !push(spaceMark + w) {
				return
			}
		}
		// Synthetic pieces: base-26 letter strings of growing length, with and without the marker.
		for length := 2; ; length++ {
			total := 1
			for i := 0; i < length; i++ {
				total *= 26
			}
			buf := make([]byte, length)
			for k := 0; k < total; k++ {
				x := k
				for i := length - 1; i >= 0; i-- {
					buf[i] = byte('a' + x%26)
					x /= 26
				}
				if !push(spaceMark+string(buf)) || !push(string(buf)) {
					return
				}
			}
		}
	}
	fill()
	for i, p := range pieces {
		// Earlier (shorter, commoner) pieces score higher, as sentencepiece scores do.
		add(p, -float32(i+1)/float32(n), tokenNormal)
	}
	return v
}
