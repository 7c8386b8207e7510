package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// jsonOpts print every field, so that scripts see the same keys every time.
var jsonOpts = protojson.MarshalOptions{EmitUnpopulated: true}

// marshal is protojson with stable whitespace (protojson varies its spacing on purpose).
func marshal(m proto.Message, indent bool) ([]byte, error) {
	raw, err := jsonOpts.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode %s as JSON: %w", m.ProtoReflect().Descriptor().FullName(), err)
	}
	var b bytes.Buffer
	if indent {
		err = json.Indent(&b, raw, "", "  ")
	} else {
		err = json.Compact(&b, raw)
	}
	if err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// printJSON prints one answer, indented.
func (a *App) printJSON(m proto.Message) error {
	b, err := marshal(m, true)
	if err != nil {
		return err
	}
	_, err = a.Stdout.Write(b)
	return err
}

// printJSONLine prints one message of a stream on one line.
func (a *App) printJSONLine(m proto.Message) error {
	b, err := marshal(m, false)
	if err != nil {
		return err
	}
	_, err = a.Stdout.Write(b)
	return err
}

// printJSONObject prints {"key": message, ...} in the given key order, indented.
func (a *App) printJSONObject(keys []string, msgs []proto.Message) error {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		raw, err := marshal(msgs[i], false)
		if err != nil {
			return err
		}
		b.Write(bytes.TrimSpace(raw))
	}
	b.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, b.Bytes(), "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := a.Stdout.Write(out.Bytes())
	return err
}

// table writes aligned columns.
func (a *App) table() *tabwriter.Writer { return tabwriter.NewWriter(a.Stdout, 0, 4, 2, ' ', 0) }

// kv prints "Key:  value" lines aligned.
func (a *App) kv(pairs ...string) error {
	w := tabwriter.NewWriter(a.Stdout, 0, 4, 1, ' ', 0)
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(w, "%s:\t%s\n", pairs[i], pairs[i+1])
	}
	return w.Flush()
}

// when formats a timestamp in local time ("-" when unset).
func when(ts *timestamppb.Timestamp) string {
	if ts == nil || (ts.GetSeconds() == 0 && ts.GetNanos() == 0) {
		return "-"
	}
	return ts.AsTime().Local().Format("2006-01-02 15:04:05")
}
