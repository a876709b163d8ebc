package history

import "fmt"

// ErrorType names an error's type for Failure.Type: its Go type, such as "*fs.PathError", which
// tells a reader what failed. The types behind errors.New, fmt.Errorf and errors.Join say nothing
// the message does not, and their names ("*errors.errorString") read as internals, so they get
// no type.
func ErrorType(err error) string {
	switch t := fmt.Sprintf("%T", err); t {
	case "*errors.errorString", "*fmt.wrapError", "*fmt.wrapErrors", "*errors.joinError":
		return ""
	default:
		return t
	}
}
