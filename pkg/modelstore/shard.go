package modelstore

import (
	"fmt"
	"regexp"
	"strconv"
)

// shardPattern matches llama.cpp split names: <prefix>-00001-of-00003.gguf.
var shardPattern = regexp.MustCompile(`^(.+)-(\d{5})-of-(\d{5})\.gguf$`)

const maxShards = 512

// shardInfo tells whether name is one shard of a split GGUF file and, when it
// is, its prefix and the shard count.
func shardInfo(name string) (prefix string, index, count int, ok bool) {
	m := shardPattern.FindStringSubmatch(name)
	if m == nil {
		return "", 0, 0, false
	}
	index, _ = strconv.Atoi(m[2])
	count, _ = strconv.Atoi(m[3])
	if index < 1 || count < 1 || index > count {
		return "", 0, 0, false
	}
	return m[1], index, count, true
}

// ShardNames lists every shard name of the split GGUF file that name belongs
// to, in order; a name that is not a shard yields just itself.
func ShardNames(name string) ([]string, error) {
	prefix, _, count, ok := shardInfo(name)
	if !ok {
		return []string{name}, nil
	}
	if count > maxShards {
		return nil, fmt.Errorf("%w: %q has %d shards (at most %d)", ErrInvalidArgument, name, count, maxShards)
	}
	names := make([]string, count)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%05d-of-%05d.gguf", prefix, i+1, count)
	}
	return names, nil
}
