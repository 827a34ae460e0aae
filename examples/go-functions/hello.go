// Package functions holds example Skybridge Go functions: plain exported Go
// functions, with no Skybridge imports. Skybridge generates the main package that
// decodes arguments from JSON, calls them and encodes the result.
package functions

import "fmt"

// Hello greets someone.
func Hello(name string) string {
	if name == "" {
		name = "world"
	}
	return fmt.Sprintf("Hello, %s!", name)
}
