// Command hello is a Skybridge function: it reads its input as JSON on stdin and
// writes its result as JSON on stdout. Logs go to stderr.
//
// Build it for the wasm backend (WASI preview 1):
//
//	GOOS=wasip1 GOARCH=wasm go build -o hello.wasm .
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

type input struct {
	Name string `json:"name"`
}

type output struct {
	Greeting string `json:"greeting"`
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "input is not {\"name\": string}: %v\n", err)
		os.Exit(1)
	}
	if in.Name == "" {
		in.Name = "world"
	}
	fmt.Fprintf(os.Stderr, "greeting %s\n", in.Name)
	json.NewEncoder(os.Stdout).Encode(output{Greeting: "Hello, " + in.Name + "!"})
}
