//go:build race

package reprise_test

// raceDetector reports whether the tests run under the race detector (go test -race).
const raceDetector = true
