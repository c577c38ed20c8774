// Package tools holds the host-side commands of Anya Edge (anyactl, and later the benchmark and
// training tools). Nothing under tools/ is imported by the code that runs on the box.
package tools
