// Command skyinspect answers two questions for Skybridge's Go build pipeline, using
// Go's own parser so the answers match what the compiler will see:
//
//	skyinspect sig <dir> <Func> <goos> <goarch>
//	    Describes top-level function Func of the package in dir, or says why the
//	    generated shim cannot call it (method, generic, chan/func parameters, ...).
//	skyinspect call <expr>
//	    Checks that expr is exactly one call of an exported identifier, so it can be
//	    pasted into generated source without breaking out of it.
//
// Both print one JSON object on stdout: {"ok": true, ...} or {"ok": false, "error": "..."}.
// It is embedded in the skybridge binary and built with the configured toolchain.
package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/scanner"
	"go/token"
	"os"
	"path/filepath"
	"strings"
)

type sigResult struct {
	OK       bool     `json:"ok"`
	Error    string   `json:"error,omitempty"`
	Package  string   `json:"package,omitempty"`
	Params   []string `json:"params,omitempty"`
	Variadic bool     `json:"variadic,omitempty"`
	Results  []string `json:"results,omitempty"`
}

type callResult struct {
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Func  string `json:"func,omitempty"`
}

func main() {
	var out any
	switch {
	case len(os.Args) == 6 && os.Args[1] == "sig":
		out = sig(os.Args[2], os.Args[3], os.Args[4], os.Args[5])
	case len(os.Args) == 3 && os.Args[1] == "call":
		out = call(os.Args[2])
	default:
		fmt.Fprintln(os.Stderr, "usage: skyinspect sig <dir> <Func> <goos> <goarch> | skyinspect call <expr>")
		os.Exit(2)
	}
	json.NewEncoder(os.Stdout).Encode(out)
}

func sigFail(format string, args ...any) sigResult {
	return sigResult{Error: fmt.Sprintf(format, args...)}
}

func sig(dir, name, goos, goarch string) sigResult {
	if !ast.IsExported(name) {
		return sigFail("function %q is not exported: its name must start with an upper-case letter", name)
	}
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH, ctx.CgoEnabled = goos, goarch, false
	pkg, err := ctx.ImportDir(dir, 0)
	if err != nil {
		return sigFail("cannot read the Go package: %v", err)
	}
	if pkg.Name == "main" {
		return sigFail("package %s is a command (package main); point `package` at a library package", pkg.ImportPath)
	}
	fset := token.NewFileSet()
	types := map[string]ast.Expr{}
	var fn *ast.FuncDecl
	var methodOf string
	for _, f := range pkg.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(dir, f), nil, parser.SkipObjectResolution)
		if err != nil {
			return sigFail("%v", err)
		}
		for _, d := range file.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Name.Name != name {
					continue
				}
				if d.Recv != nil {
					methodOf = exprString(d.Recv.List[0].Type)
					continue
				}
				fn = d
			case *ast.GenDecl:
				for _, s := range d.Specs {
					if ts, ok := s.(*ast.TypeSpec); ok {
						types[ts.Name.Name] = ts.Type
					}
				}
			}
		}
	}
	if fn == nil {
		if methodOf != "" {
			return sigFail("%s is a method of %s; only top-level functions can be called", name, methodOf)
		}
		return sigFail("package %s has no function %s", pkg.Name, name)
	}
	if fn.Type.TypeParams != nil && len(fn.Type.TypeParams.List) > 0 {
		return sigFail("%s is generic; only non-generic functions can be called", name)
	}
	res := sigResult{OK: true, Package: pkg.Name}
	if fn.Type.Params != nil {
		for _, field := range fn.Type.Params.List {
			t := field.Type
			if e, ok := t.(*ast.Ellipsis); ok {
				res.Variadic = true
				t = e.Elt
			}
			if why := unsupported(t, types); why != "" {
				return sigFail("%s cannot be called with JSON arguments: parameter type %s is %s", name, exprString(field.Type), why)
			}
			res.Params = appendField(res.Params, field)
		}
	}
	if fn.Type.Results != nil {
		for _, field := range fn.Type.Results.List {
			if id, ok := field.Type.(*ast.Ident); ok && id.Name == "error" {
				// The shim turns a non-nil error into a failed execution.
			} else if why := unsupported(field.Type, types); why != "" {
				return sigFail("%s cannot return JSON: result type %s is %s", name, exprString(field.Type), why)
			}
			res.Results = appendField(res.Results, field)
		}
	}
	return res
}

// unsupported says why values of type t cannot cross JSON, or "" when they can.
// It walks composite types and follows named types of the same package, so
// `type Callback func()` and `[]chan int` are caught. Types of other packages are
// not followed; a mismatch there is reported by the shim when it is called.
func unsupported(t ast.Expr, types map[string]ast.Expr) string {
	return walk(t, types, map[string]bool{})
}

func walk(t ast.Expr, types map[string]ast.Expr, seen map[string]bool) string {
	switch x := t.(type) {
	case *ast.ChanType:
		return "a channel"
	case *ast.FuncType:
		return "a function"
	case *ast.ParenExpr:
		return walk(x.X, types, seen)
	case *ast.StarExpr:
		return walk(x.X, types, seen)
	case *ast.Ellipsis:
		return walk(x.Elt, types, seen)
	case *ast.ArrayType:
		return walk(x.Elt, types, seen)
	case *ast.MapType:
		if why := walk(x.Key, types, seen); why != "" {
			return why
		}
		return walk(x.Value, types, seen)
	case *ast.StructType:
		for _, f := range x.Fields.List {
			if len(f.Names) > 0 && !anyExported(f.Names) {
				continue // unexported fields are skipped by encoding/json
			}
			if why := walk(f.Type, types, seen); why != "" {
				return why
			}
		}
		return ""
	case *ast.InterfaceType:
		if x.Methods != nil && len(x.Methods.List) > 0 {
			return "an interface with methods (JSON cannot choose a concrete type)"
		}
		return ""
	case *ast.SelectorExpr:
		if id, ok := x.X.(*ast.Ident); ok && id.Name == "unsafe" && x.Sel.Name == "Pointer" {
			return "unsafe.Pointer"
		}
		return ""
	case *ast.Ident:
		switch x.Name {
		case "complex64", "complex128":
			return "a complex number"
		case "error":
			return "an interface with methods (JSON cannot choose a concrete type)"
		}
		def, ok := types[x.Name]
		if !ok || seen[x.Name] {
			return ""
		}
		seen[x.Name] = true
		return walk(def, types, seen)
	default:
		return ""
	}
}

func anyExported(names []*ast.Ident) bool {
	for _, n := range names {
		if n.IsExported() {
			return true
		}
	}
	return false
}

// appendField appends a field's type once per name it declares (`a, b int` is two
// parameters), or once for an unnamed field.
func appendField(list []string, field *ast.Field) []string {
	for i := 0; i < max(len(field.Names), 1); i++ {
		list = append(list, exprString(field.Type))
	}
	return list
}

func exprString(e ast.Expr) string {
	var b strings.Builder
	writeExpr(&b, e)
	return b.String()
}

func writeExpr(b *strings.Builder, e ast.Expr) {
	switch x := e.(type) {
	case *ast.Ident:
		b.WriteString(x.Name)
	case *ast.SelectorExpr:
		writeExpr(b, x.X)
		b.WriteString(".")
		b.WriteString(x.Sel.Name)
	case *ast.StarExpr:
		b.WriteString("*")
		writeExpr(b, x.X)
	case *ast.ArrayType:
		b.WriteString("[")
		if x.Len != nil {
			writeExpr(b, x.Len)
		}
		b.WriteString("]")
		writeExpr(b, x.Elt)
	case *ast.MapType:
		b.WriteString("map[")
		writeExpr(b, x.Key)
		b.WriteString("]")
		writeExpr(b, x.Value)
	case *ast.Ellipsis:
		b.WriteString("...")
		writeExpr(b, x.Elt)
	case *ast.ChanType:
		b.WriteString("chan ")
		writeExpr(b, x.Value)
	case *ast.FuncType:
		b.WriteString("func(...)")
	case *ast.InterfaceType:
		b.WriteString("interface{...}")
	case *ast.StructType:
		b.WriteString("struct{...}")
	case *ast.BasicLit:
		b.WriteString(x.Value)
	default:
		fmt.Fprintf(b, "%T", e)
	}
}

func call(expr string) callResult {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return callResult{Error: fmt.Sprintf("not a Go expression: %v", err)}
	}
	c, ok := e.(*ast.CallExpr)
	if !ok {
		return callResult{Error: "not a function call: expected Name(arguments)"}
	}
	id, ok := c.Fun.(*ast.Ident)
	if !ok {
		return callResult{Error: "the called function must be a plain name from the package, e.g. Encode(1, 2)"}
	}
	if !ast.IsExported(id.Name) {
		return callResult{Error: fmt.Sprintf("function %q is not exported", id.Name)}
	}
	// A comment could swallow the generated code after the call (a trailing //).
	var sc scanner.Scanner
	fset := token.NewFileSet()
	file := fset.AddFile("call", fset.Base(), len(expr))
	sc.Init(file, []byte(expr), nil, scanner.ScanComments)
	for {
		_, tok, _ := sc.Scan()
		if tok == token.EOF {
			break
		}
		if tok == token.COMMENT {
			return callResult{Error: "comments are not allowed in a call"}
		}
	}
	bad := ""
	ast.Inspect(c, func(n ast.Node) bool {
		if _, ok := n.(*ast.FuncLit); ok && bad == "" {
			bad = "function literals are not allowed in a call"
		}
		return bad == ""
	})
	if bad != "" {
		return callResult{Error: bad}
	}
	return callResult{OK: true, Func: id.Name}
}
