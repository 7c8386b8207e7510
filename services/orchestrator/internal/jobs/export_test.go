package jobs

// TempFile is the gallery's file-writing seam, for tests.
type TempFile = tempFile

// SetCreateTemp replaces how the gallery of m creates its temporary files (call it before
// the first job is submitted).
func SetCreateTemp(m *Manager, f func(dir, pattern string) (TempFile, error)) { m.gal.createTemp = f }
