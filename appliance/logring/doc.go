// Package logring keeps the last lines written to it in memory, numbered, so the status page can
// show the recent log of a box that has no log files (its root is read-only and its data
// partition may be missing or damaged). It is an [io.Writer]: point slog handlers and the
// output of supervised processes at it.
package logring
