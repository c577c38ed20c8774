// Package browsertest drives headless Chromium for the browser tests of the appliance's
// pages. It is for tests only: Start starts Chromium (/usr/bin/chromium) with the project's
// flags at a phone's size, 390×844.
package browsertest
