package llamaclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// llama-server's slot API (checked against the installed 0.7.0, build 11669, and present in llama.cpp
// since mid-2024): GET /slots lists the slots (enabled by default; --no-slots turns it off), and with
// --slot-save-path DIR, POST /slots/{id}?action=save|restore|erase with {"filename": NAME} saves a slot's
// KV cache to DIR/NAME, restores it, or clears the slot. NAME may not contain a path separator or "..".
// A restore of a missing or corrupt file is a 400 invalid_request_error ("Unable to restore slot: ...").

// Slot is one entry of GET /slots. Fields a version lacks stay zero.
type Slot struct {
	ID           int  `json:"id"`
	NCtx         int  `json:"n_ctx"`
	IsProcessing bool `json:"is_processing"`
	// IDTask is the id of the slot's last task; -1 or absent (0) when it never had one. Task ids grow, so a
	// higher one was used more recently.
	IDTask int `json:"id_task"`
	// NPromptTokens is the prompt size of the slot's last task; 0 when it never had one.
	NPromptTokens int `json:"n_prompt_tokens"`
}

// Used reports whether the slot ever held a prompt (whose KV cache a save would keep).
func (s Slot) Used() bool { return s.NPromptTokens > 0 }

// SlotSaveResult is the answer to a save.
type SlotSaveResult struct {
	ID       int    `json:"id_slot"`
	Filename string `json:"filename"`
	NSaved   int    `json:"n_saved"`
	NWritten int64  `json:"n_written"`
	Timings  struct {
		SaveMs float64 `json:"save_ms"`
	} `json:"timings"`
}

// SlotRestoreResult is the answer to a restore.
type SlotRestoreResult struct {
	ID        int    `json:"id_slot"`
	Filename  string `json:"filename"`
	NRestored int    `json:"n_restored"`
	NRead     int64  `json:"n_read"`
	Timings   struct {
		RestoreMs float64 `json:"restore_ms"`
	} `json:"timings"`
}

// Slots lists llama-server's slots (GET /slots).
func (c *Client) Slots(ctx context.Context) ([]Slot, error) {
	var out []Slot
	if err := c.slotCall(ctx, http.MethodGet, "/slots", nil, &out); err != nil {
		return nil, fmt.Errorf("list slots: %w", err)
	}
	return out, nil
}

// SaveSlot saves slot id's KV cache to filename in llama-server's --slot-save-path.
func (c *Client) SaveSlot(ctx context.Context, id int, filename string) (SlotSaveResult, error) {
	var out SlotSaveResult
	if err := c.slotAction(ctx, id, "save", filename, &out); err != nil {
		return out, fmt.Errorf("save slot %d to %s: %w", id, filename, err)
	}
	return out, nil
}

// RestoreSlot loads filename from llama-server's --slot-save-path into slot id.
func (c *Client) RestoreSlot(ctx context.Context, id int, filename string) (SlotRestoreResult, error) {
	var out SlotRestoreResult
	if err := c.slotAction(ctx, id, "restore", filename, &out); err != nil {
		return out, fmt.Errorf("restore slot %d from %s: %w", id, filename, err)
	}
	return out, nil
}

// EraseSlot clears slot id's KV cache.
func (c *Client) EraseSlot(ctx context.Context, id int) error {
	var out struct{}
	if err := c.slotAction(ctx, id, "erase", "", &out); err != nil {
		return fmt.Errorf("erase slot %d: %w", id, err)
	}
	return nil
}

func (c *Client) slotAction(ctx context.Context, id int, action, filename string, out any) error {
	body := map[string]string{}
	if filename != "" {
		body["filename"] = filename
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	path := "/slots/" + strconv.Itoa(id) + "?action=" + url.QueryEscape(action)
	return c.slotCall(ctx, http.MethodPost, path, b, out)
}

// maxSlotAnswer bounds the answers of the slot API (the slot list of a server with many slots included).
const maxSlotAnswer = 8 << 20

func (c *Client) slotCall(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint(path), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxSlotAnswer))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return ParseError(resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	return nil
}
