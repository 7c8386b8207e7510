package modelstore

import (
	"errors"
	"fmt"
	"io/fs"

	gguf "github.com/gpustack/gguf-parser-go"
)

// GGUFInfo is what the orchestrator needs from a GGUF header to estimate
// memory, read with github.com/gpustack/gguf-parser-go.
type GGUFInfo struct {
	Architecture      string  `json:"architecture"`
	Name              string  `json:"name,omitempty"`
	BlockCount        uint64  `json:"block_count"`
	ContextLength     uint64  `json:"context_length"`
	EmbeddingLength   uint64  `json:"embedding_length"`
	FeedForwardLength uint64  `json:"feed_forward_length"` // of the first layer
	VocabSize         uint64  `json:"vocab_size"`
	HeadCount         uint64  `json:"head_count"`
	HeadCountKV       uint64  `json:"head_count_kv"`
	KeyLength         uint32  `json:"key_length"`
	ValueLength       uint32  `json:"value_length"`
	FileType          string  `json:"file_type"`
	FileTypeID        uint32  `json:"file_type_id"`
	ParameterCount    uint64  `json:"parameter_count"`
	TensorDataSize    uint64  `json:"tensor_data_size"` // bytes of tensor data, all shards
	FileSize          uint64  `json:"file_size"`        // bytes of all shards
	BitsPerWeight     float64 `json:"bits_per_weight"`
	SplitCount        int     `json:"split_count"`
}

// readGGUF reads the GGUF metadata of a model's main file (name in model id).
// The parser opens files by path, the main file and, for a split file, the
// other shards next to it: each is checked through the store's root first, so
// that a link out of the store is refused (ErrOutsideStore) rather than parsed.
func (s *Store) readGGUF(id, name string) (*GGUFInfo, error) {
	names, err := ShardNames(name)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		fi, err := s.dir.Stat(rel(id, n))
		if errors.Is(err, fs.ErrNotExist) && n != name {
			continue // a missing shard is the parser's to report
		}
		if err != nil {
			return nil, fmt.Errorf("parse gguf %s: %w", s.abs(rel(id, n)), outside(err))
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("parse gguf %s: not a regular file", s.abs(rel(id, n)))
		}
	}
	return ReadGGUFInfo(s.abs(rel(id, name)))
}

// ReadGGUFInfo parses the GGUF header at path (the first shard of a split
// file: the others are found next to it).
func ReadGGUFInfo(path string) (info *GGUFInfo, err error) {
	defer func() {
		// The parser reads untrusted bytes; never let a crafted file crash the service.
		if r := recover(); r != nil {
			info, err = nil, fmt.Errorf("parse gguf %s: %v", path, r)
		}
	}()
	f, err := gguf.ParseGGUFFile(path, gguf.SkipLargeMetadata())
	if err != nil {
		return nil, fmt.Errorf("parse gguf %s: %w", path, err)
	}
	a := f.Architecture()
	m := f.Metadata()
	splits := len(f.SplitSizes)
	if splits == 0 {
		splits = 1
	}
	var ffn uint64
	if len(a.FeedForwardLength) > 0 {
		ffn = a.FeedForwardLength[0]
	}
	return &GGUFInfo{
		FeedForwardLength: ffn,
		VocabSize:         a.VocabularyLength,
		Architecture:      a.Architecture,
		Name:              m.Name,
		BlockCount:        a.BlockCount,
		ContextLength:     a.MaximumContextLength,
		EmbeddingLength:   a.EmbeddingLength,
		HeadCount:         a.AttentionHeadCount,
		HeadCountKV:       a.AttentionHeadCountKV,
		KeyLength:         a.AttentionKeyLength,
		ValueLength:       a.AttentionValueLength,
		FileType:          m.FileType.String(),
		FileTypeID:        uint32(m.FileType),
		ParameterCount:    uint64(f.ModelParameters),
		TensorDataSize:    uint64(f.ModelSize),
		FileSize:          uint64(f.Size),
		BitsPerWeight:     float64(f.ModelBitsPerWeight),
		SplitCount:        splits,
	}, nil
}
