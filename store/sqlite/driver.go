package sqlite

import (
	"net/url"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

const driverName = "sqlite"

// dsn asks the driver to run the pragmas on every new connection, so pooled read connections get
// them too.
func dsn(path string, pragmas []string) string {
	v := url.Values{}
	for _, p := range pragmas {
		v.Add("_pragma", p)
	}
	return "file:" + escapePath(path) + "?" + v.Encode()
}
