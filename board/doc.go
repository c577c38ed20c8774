// Package board holds the drivers for the box's own hardware: the watchdog, and (as they come)
// the front-panel display on I2C and the buttons. Each driver is a small package that talks to
// its Linux device file and knows nothing of HTTP or PID 1.
package board
