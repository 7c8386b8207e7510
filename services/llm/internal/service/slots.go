package service

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	llmv1 "github.com/genailab/genailab/gen/llm/v1"
	"github.com/genailab/genailab/services/llm/internal/llamaclient"
)

// Slot save and restore: the conversations' KV caches survive an offload. The Stop of an
// offload, after the chats drained and before the process is stopped, asks llama-server
// (started with --slot-save-path Options.SlotDir) to save every used slot, most recently
// used first, within Options.SlotBudget (the oldest are dropped first); the Start of the
// reload restores the files the orchestrator names (its saved state lists them) before chats
// are admitted. A file is restored only into the same model file and compatible settings
// (slotKey, in the manifest); a mismatch, a corrupt or missing file, or a restore llama-server
// refuses is skipped with a logged reason, never fatal. Restored or not, the files are
// consumed by the restore: the next offload saves afresh.

// DefaultSlotBudget bounds the bytes of saved slot files when Options.SlotBudget is 0.
const DefaultSlotBudget = 4 << 30

// slotClient is the slot API client of the server at base.
func (s *Service) slotClient(base string) (*llamaclient.Client, error) {
	c, err := llamaclient.New(base, s.hc)
	if err != nil {
		return nil, err
	}
	return c.WithAPIKey(s.apiKey), nil
}

// slotKeyOf is the key of the server r runs, with its slots as GET /slots lists them.
func slotKeyOf(r *resolved, slots []llamaclient.Slot) (slotKey, error) {
	st, err := os.Stat(r.modelPath)
	if err != nil {
		return slotKey{}, fmt.Errorf("model file: %w", err)
	}
	k := slotKey{
		ModelID: r.cfg.GetModelId(), ModelSize: st.Size(), ModelModTime: st.ModTime().UnixNano(),
		ContextSize: r.cfg.GetContextSize(), Slots: len(slots),
		CacheTypeK: r.cfg.GetCacheTypeK(), CacheTypeV: r.cfg.GetCacheTypeV(),
	}
	if len(slots) > 0 {
		k.SlotContext = slots[0].NCtx
	}
	return k, nil
}

func (s *Service) slotBudget() int64 {
	if s.opts.SlotBudget > 0 {
		return s.opts.SlotBudget
	}
	return DefaultSlotBudget
}

// saveSlots saves the used slots of the server r runs at base into the slot directory and
// replaces the manifest. It returns nil when slot saving is off.
func (s *Service) saveSlots(ctx context.Context, r *resolved, base string) *llmv1.SlotSave {
	dir := s.opts.SlotDir
	if dir == "" || r == nil {
		return nil
	}
	begin := time.Now()
	out := &llmv1.SlotSave{}
	skip := func(id int, file, reason string) {
		s.log.Warn("slot not saved", "slot", id, "file", file, "reason", reason)
		out.Skipped = append(out.Skipped, &llmv1.SkippedSlot{SlotId: int32(id), File: file, Reason: reason})
	}
	defer func() { out.DurationMs = time.Since(begin).Milliseconds() }()
	client, err := s.slotClient(base)
	if err != nil {
		skip(-1, "", err.Error())
		return out
	}
	slots, err := client.Slots(ctx)
	if err != nil {
		skip(-1, "", err.Error()+" (a server started with --no-slots cannot save them)")
		return out
	}
	key, err := slotKeyOf(r, slots)
	if err != nil {
		skip(-1, "", err.Error())
		return out
	}
	used := make([]llamaclient.Slot, 0, len(slots))
	for _, sl := range slots {
		if sl.Used() {
			used = append(used, sl)
		}
	}
	// Most recently used first: the budget drops the oldest.
	sort.SliceStable(used, func(i, j int) bool { return used[i].IDTask > used[j].IDTask })
	budget := s.slotBudget()
	stamp := time.Now().UnixNano()
	m := &slotManifest{Version: slotManifestVersion, SavedAt: time.Now().UTC(), Key: key}
	for _, sl := range used {
		if sl.IsProcessing {
			skip(sl.ID, "", "a chat was still being served in it")
			continue
		}
		e, reason := s.saveSlot(ctx, client, dir, sl, stamp, budget-out.Bytes)
		if reason != "" {
			skip(sl.ID, e.File, reason)
			continue
		}
		if e.File == "" {
			continue // nothing in it
		}
		m.Slots = append(m.Slots, e)
		out.Slots = append(out.Slots, &llmv1.SavedSlot{SlotId: int32(e.SlotID), File: e.File, Tokens: e.Tokens, Bytes: e.Bytes})
		out.Tokens += e.Tokens
		out.Bytes += e.Bytes
	}
	keep := map[string]bool{}
	var err2 error
	if len(m.Slots) > 0 {
		err2 = writeSlotManifest(dir, m)
		for _, e := range m.Slots {
			keep[e.File] = true
		}
	} else {
		err2 = removeSlotManifest(dir)
	}
	if err2 != nil {
		// Without a manifest no file is restored: report them as not saved.
		for _, e := range m.Slots {
			skip(e.SlotID, e.File, err2.Error())
		}
		out.Slots, out.Tokens, out.Bytes, keep = nil, 0, 0, nil
	}
	if err := pruneSlotFiles(dir, keep); err != nil {
		s.log.Warn("remove old slot files", "dir", dir, "err", err)
	}
	s.log.Info("slots saved for the offload", "slots", len(out.Slots), "tokens", out.Tokens, "bytes", out.Bytes,
		"skipped", len(out.Skipped), "ms", time.Since(begin).Milliseconds())
	return out
}

// saveSlot saves one slot under a temporary name, checks it against room (the budget left),
// syncs it and gives it its final name. An empty slot returns a zero entry and no reason.
func (s *Service) saveSlot(ctx context.Context, client *llamaclient.Client, dir string, sl llamaclient.Slot, stamp int64, room int64) (slotEntry, string) {
	name := fmt.Sprintf("%s%d-%d.bin", slotFilePrefix, sl.ID, stamp)
	tmp := slotTempPrefix + name
	tmpPath := filepath.Join(dir, tmp)
	res, err := client.SaveSlot(ctx, sl.ID, tmp)
	if err != nil {
		os.Remove(tmpPath)
		return slotEntry{File: name}, err.Error()
	}
	if res.NSaved == 0 {
		os.Remove(tmpPath)
		return slotEntry{}, ""
	}
	size, crc, err := syncedFileCRC(tmpPath)
	if err != nil {
		os.Remove(tmpPath)
		return slotEntry{File: name}, err.Error()
	}
	if size > room {
		os.Remove(tmpPath)
		return slotEntry{File: name}, fmt.Sprintf("over the slot size budget (%d bytes, %d left of %d)", size, max(room, 0), s.slotBudget())
	}
	if err := os.Rename(tmpPath, filepath.Join(dir, name)); err != nil {
		os.Remove(tmpPath)
		return slotEntry{File: name}, fmt.Sprintf("rename slot file: %v", err)
	}
	return slotEntry{SlotID: sl.ID, File: name, Tokens: int64(res.NSaved), Bytes: size, CRC32C: crc, Task: sl.IDTask}, ""
}

// syncedFileCRC syncs a file llama-server wrote and returns its size and CRC-32C.
func syncedFileCRC(path string) (int64, uint32, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, fmt.Errorf("slot file: %w", err)
	}
	err = f.Sync()
	f.Close()
	if err != nil {
		return 0, 0, fmt.Errorf("sync slot file: %w", err)
	}
	return fileCRC(path)
}

// restoreSlots restores files (named by the saved state of the offload) into the server r runs
// at base, and consumes the slot directory's manifest and files.
func (s *Service) restoreSlots(ctx context.Context, r *resolved, base string, files []string) *llmv1.SlotRestore {
	begin := time.Now()
	out := &llmv1.SlotRestore{}
	skip := func(id int, file, reason string) {
		s.log.Warn("slot file not restored", "slot", id, "file", file, "reason", reason)
		out.Skipped = append(out.Skipped, &llmv1.SkippedSlot{SlotId: int32(id), File: file, Reason: reason})
	}
	defer func() { out.DurationMs = time.Since(begin).Milliseconds() }()
	dir := s.opts.SlotDir
	if dir == "" {
		for _, f := range files {
			skip(-1, f, "slot saving is off in this LLM service (no slot directory)")
		}
		return out
	}
	defer func() {
		if err := removeSlotManifest(dir); err != nil {
			s.log.Warn("consume slot manifest", "err", err)
		}
		if err := pruneSlotFiles(dir, nil); err != nil {
			s.log.Warn("remove restored slot files", "dir", dir, "err", err)
		}
	}()
	m, err := readSlotManifest(dir)
	if err == nil && m == nil {
		err = errors.New("no slot manifest (nothing was saved, or it was restored already)")
	}
	if err != nil {
		for _, f := range files {
			skip(-1, f, err.Error())
		}
		return out
	}
	client, err := s.slotClient(base)
	var slots []llamaclient.Slot
	if err == nil {
		slots, err = client.Slots(ctx)
	}
	var key slotKey
	if err == nil {
		key, err = slotKeyOf(r, slots)
	}
	if err != nil {
		for _, f := range files {
			skip(-1, f, err.Error())
		}
		return out
	}
	mismatch := m.Key.mismatch(key)
	byFile := make(map[string]slotEntry, len(m.Slots))
	for _, e := range m.Slots {
		byFile[e.File] = e
	}
	seen := map[int]bool{}
	for _, f := range files {
		e, ok := byFile[f]
		switch {
		case !ok:
			skip(-1, f, "not in the slot manifest (saved by another offload, or restored already)")
			continue
		case mismatch != "":
			skip(e.SlotID, f, mismatch)
			continue
		case e.SlotID < 0 || e.SlotID >= len(slots):
			skip(e.SlotID, f, fmt.Sprintf("the server has %d slots", len(slots)))
			continue
		case seen[e.SlotID]:
			skip(e.SlotID, f, "another file was restored into this slot")
			continue
		}
		size, crc, err := fileCRC(filepath.Join(dir, f))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			skip(e.SlotID, f, "the file is missing")
			continue
		case err != nil:
			skip(e.SlotID, f, err.Error())
			continue
		case size != e.Bytes || crc != e.CRC32C:
			skip(e.SlotID, f, fmt.Sprintf("corrupt: %d bytes with CRC-32C %08x, the manifest says %d bytes with %08x", size, crc, e.Bytes, e.CRC32C))
			continue
		}
		res, err := client.RestoreSlot(ctx, e.SlotID, f)
		if err != nil {
			skip(e.SlotID, f, err.Error())
			continue
		}
		seen[e.SlotID] = true
		out.Slots = append(out.Slots, &llmv1.SavedSlot{SlotId: int32(e.SlotID), File: f, Tokens: int64(res.NRestored), Bytes: res.NRead})
		out.Tokens += int64(res.NRestored)
	}
	s.log.Info("slots restored after the offload", "slots", len(out.Slots), "tokens", out.Tokens,
		"skipped", len(out.Skipped), "ms", time.Since(begin).Milliseconds())
	return out
}
