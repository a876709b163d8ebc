package store

// Temporary until the except branch lands: the API it adds.

const allExceptMark = "\x00all-except"

// AllNamesExcept returns the set of every name except those given.
func AllNamesExcept(names ...string) Names { return append(Names{allExceptMark}, names...) }

// Except reports whether n is an AllNamesExcept set and returns the names it leaves out.
func (n Names) Except() ([]string, bool) {
	if len(n) > 0 && n[0] == allExceptMark {
		return n[1:], true
	}
	return nil, false
}
