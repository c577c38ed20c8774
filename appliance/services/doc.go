// Package services wires the product's services together: it opens the box's database on the
// data directory, mounts the web page and API on it, and serves them. It runs in the child
// process PID 1 supervises ("anyad serve") and, unchanged, in development mode on a host.
package services
