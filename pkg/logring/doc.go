// Package logring keeps bounded logs: an in-memory ring of the most recent
// entries that any number of readers can follow, and a size-rotated log file.
//
// The ring never blocks its writer. Readers are cursors into the ring rather
// than queues of their own: a reader that falls more than the ring's capacity
// behind loses the oldest entries and is told how many it missed, while the
// writer and every other reader carry on untouched. Memory is fixed by the
// capacity, whatever the number of readers.
package logring
