package state

import (
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// etcdSchema is the version of the envelope and of the records in it. A reader meeting a
// newer one refuses the record (skipped and counted like a damaged one), never guesses.
const etcdSchema = 1

// envelope is the value of every etcd record: readable with etcdctl, versioned.
type envelope struct {
	Schema int             `json:"schema"`
	Kind   string          `json:"kind"`
	Value  json.RawMessage `json:"value"`
}

func encodeProto(kind string, m proto.Message) (string, error) {
	v, err := protojson.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", kind, err)
	}
	return encodeRaw(kind, v)
}

func encodeJSON(kind string, v any) (string, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s: %w", kind, err)
	}
	return encodeRaw(kind, data)
}

func encodeRaw(kind string, v []byte) (string, error) {
	data, err := json.Marshal(envelope{Schema: etcdSchema, Kind: kind, Value: v})
	return string(data), err
}

// open checks the envelope of a record of kind and returns its value.
func open(kind string, data []byte) (json.RawMessage, error) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	if env.Schema != etcdSchema {
		return nil, fmt.Errorf("%w: schema %d, this orchestrator reads %d", ErrCorruptRecord, env.Schema, etcdSchema)
	}
	if env.Kind != kind {
		return nil, fmt.Errorf("%w: a %q record where a %q was expected", ErrCorruptRecord, env.Kind, kind)
	}
	return env.Value, nil
}

func decodeProto(kind string, data []byte, m proto.Message) error {
	v, err := open(kind, data)
	if err != nil {
		return err
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(v, m); err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	return nil
}

func decodeJSON(kind string, data []byte, v any) error {
	raw, err := open(kind, data)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptRecord, err)
	}
	return nil
}
