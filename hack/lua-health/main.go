// Command lua-health runs an Argo CD resource health script the way an Argo CD application controller
// runs one configured in argocd-cm (`resource.customizations.health.<group>_<kind>`): gopher-lua with
// SkipOpenLibs and only the package, base and table libraries and Argo CD's "safe" os subset opened,
// the object as the global `obj`, a 1 s deadline, and the returned table read as {status, message}.
//
// Ported from Argo CD's util/lua/lua.go (VM.runLua, VM.ExecuteHealthLua, decodeValue,
// isValidHealthStatusCode) and util/lua/oslib_safe.go (OpenSafeOs, SafeOsLoader, os.time, os.date),
// so a script that passes here behaves the same in Argo CD; in particular `string`, `math`, `io` and
// the real `os` are absent, as they are for a script in argocd-cm without useOpenLibs.
//
// Usage:
//
//	lua-health (-script health.lua | -configmap argocd-cm.yaml [-key K]) [-open-libs] [FILE...]
//	    one JSON line per object read (YAML/JSON documents or a List; no FILE or "-": stdin):
//	    {"name":"shop","status":"Healthy","message":""}
//	lua-health [-script ... | -configmap ...] -test DIR/health_test.yaml
//	    Argo CD's own test layout (resource_customizations/<group>/<kind>/health_test.yaml): every case's
//	    inputPath (relative to the test file) must give exactly its healthStatus; without -script and
//	    -configmap the script is health.lua next to the test file. Exit status 1 on any mismatch.
//
// A script error (a nil global called, a non-table result, the deadline) is exit status 1.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"
)

const defaultKey = "resource.customizations.health.webappscaler.io_WebAppScaling"

// The health statuses Argo CD accepts from a script (gitops-engine pkg/health); anything else becomes
// Unknown with Argo CD's own message.
var validStatuses = map[string]bool{
	"Unknown": true, "Progressing": true, "Suspended": true, "Healthy": true, "Degraded": true, "Missing": true,
}

const invalidHealthStatus = "Lua returned an invalid health status"

type healthStatus struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	script := flag.String("script", "", "the health script (a .lua file)")
	configMap := flag.String("configmap", "", "an argocd-cm ConfigMap (YAML) holding the script under -key")
	key := flag.String("key", defaultKey, "the argocd-cm data key of the script")
	openLibs := flag.Bool("open-libs", false, "open every standard library, as Argo CD does for useOpenLibs")
	testFile := flag.String("test", "", "run the cases of this health_test.yaml")
	flag.Parse()

	source, err := loadScript(*script, *configMap, *key, *testFile)
	if err != nil {
		fail(err)
	}
	if *testFile != "" {
		if err := runTests(source, *openLibs, *testFile); err != nil {
			fail(err)
		}
		return
	}
	inputs := flag.Args()
	if len(inputs) == 0 {
		inputs = []string{"-"}
	}
	out := json.NewEncoder(os.Stdout)
	for _, input := range inputs {
		objects, err := readObjects(input)
		if err != nil {
			fail(err)
		}
		for _, object := range objects {
			result, err := executeHealthLua(object, source, *openLibs)
			if err != nil {
				fail(fmt.Errorf("%s: %w", name(object), err))
			}
			line := struct {
				Name string `json:"name"`
				healthStatus
			}{name(object), *result}
			if err := out.Encode(line); err != nil {
				fail(err)
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "lua-health:", err)
	os.Exit(1)
}

func loadScript(script, configMap, key, testFile string) (string, error) {
	switch {
	case script != "" && configMap != "":
		return "", errors.New("-script and -configmap exclude each other")
	case script != "":
		data, err := os.ReadFile(script)
		return string(data), err
	case configMap != "":
		data, err := os.ReadFile(configMap)
		if err != nil {
			return "", err
		}
		var cm struct {
			Kind string            `json:"kind"`
			Data map[string]string `json:"data"`
		}
		if err := yaml.Unmarshal(data, &cm); err != nil {
			return "", fmt.Errorf("%s: %w", configMap, err)
		}
		source, ok := cm.Data[key]
		if cm.Kind != "ConfigMap" || !ok {
			return "", fmt.Errorf("%s: no ConfigMap with data key %s", configMap, key)
		}
		return source, nil
	case testFile != "":
		data, err := os.ReadFile(filepath.Join(filepath.Dir(testFile), "health.lua"))
		return string(data), err
	}
	return "", errors.New("no script: -script, -configmap or -test")
}

// runLua is Argo CD's VM.runLua with UseOpenLibs false unless asked: the four libraries opened in its
// order, the safe os preloaded for require("os"), the 1 s context, obj decoded by decodeValue.
func runLua(object map[string]interface{}, script string, openLibs bool) (*lua.LState, error) {
	l := lua.NewState(lua.Options{SkipOpenLibs: !openLibs})
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		// Argo CD's 'safe' os; note that upstream registers its functions under the name of the table
		// library (RegisterModule(lua.TabLibName, osFuncs)), so the global `os` stays nil and a script
		// must `local os = require("os")` — kept as upstream does it
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			l.Close()
			return nil, err
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	ctx, cancel := context.WithTimeout(context.Background(), 1*time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, object))
	return l, l.DoString(script)
}

// executeHealthLua is Argo CD's VM.ExecuteHealthLua: the value on top of the stack must be a table;
// upstream encodes it with gopher-json and unmarshals that into {status, message}, so a field of
// another type than string, or an array, is an error; a status outside the known set is Unknown.
func executeHealthLua(object map[string]interface{}, script string, openLibs bool) (*healthStatus, error) {
	l, err := runLua(object, script, openLibs)
	if l != nil {
		defer l.Close()
	}
	if err != nil {
		return nil, err
	}
	returned := l.Get(-1)
	table, ok := returned.(*lua.LTable)
	if !ok {
		return nil, fmt.Errorf("expect table output from Lua script, not %s", returned.Type().String())
	}
	if table.Len() > 0 {
		return nil, errors.New("the script returned an array, not a {status, message} table")
	}
	result := &healthStatus{}
	for field, into := range map[string]*string{"status": &result.Status, "message": &result.Message} {
		switch value := table.RawGetString(field).(type) {
		case lua.LString:
			*into = string(value)
		case *lua.LNilType:
		default:
			return nil, fmt.Errorf("%s is a %s, not a string", field, value.Type().String())
		}
	}
	if !validStatuses[result.Status] {
		return &healthStatus{Status: "Unknown", Message: invalidHealthStatus}, nil
	}
	return result, nil
}

// decodeValue is Argo CD's (after gopher-json's): maps → tables with string keys, arrays → tables with
// 1-based indices, numbers → numbers, json.Number → strings, bools, null (and anything else) → nil.
func decodeValue(l *lua.LState, value interface{}) lua.LValue {
	switch converted := value.(type) {
	case bool:
		return lua.LBool(converted)
	case float64:
		return lua.LNumber(converted)
	case string:
		return lua.LString(converted)
	case json.Number:
		return lua.LString(converted)
	case int:
		return lua.LNumber(converted)
	case int32:
		return lua.LNumber(converted)
	case int64:
		return lua.LNumber(converted)
	case []interface{}:
		arr := l.CreateTable(len(converted), 0)
		for _, item := range converted {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]interface{}:
		tbl := l.CreateTable(0, len(converted))
		for key, item := range converted {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	case nil:
		return lua.LNil
	}
	return lua.LNil
}

type testCases struct {
	Tests []struct {
		HealthStatus healthStatus `json:"healthStatus"`
		InputPath    string       `json:"inputPath"`
	} `json:"tests"`
}

// runTests checks every case of a health_test.yaml, as Argo CD's resource_customizations test does
// (status and message both equal), and reports each; the error names the failed ones.
func runTests(script string, openLibs bool, testFile string) error {
	data, err := os.ReadFile(testFile)
	if err != nil {
		return err
	}
	var cases testCases
	if err := yaml.UnmarshalStrict(data, &cases); err != nil {
		return fmt.Errorf("%s: %w", testFile, err)
	}
	if len(cases.Tests) == 0 {
		return fmt.Errorf("%s: no tests", testFile)
	}
	var failed []string
	for _, c := range cases.Tests {
		got, err := healthOfFile(filepath.Join(filepath.Dir(testFile), c.InputPath), script, openLibs)
		switch {
		case err != nil:
			fmt.Printf("FAIL %s: %v\n", c.InputPath, err)
			failed = append(failed, c.InputPath)
		case *got != c.HealthStatus:
			fmt.Printf("FAIL %s: want %s %q, got %s %q\n", c.InputPath, c.HealthStatus.Status,
				c.HealthStatus.Message, got.Status, got.Message)
			failed = append(failed, c.InputPath)
		default:
			fmt.Printf("ok   %s: %s %q\n", c.InputPath, got.Status, got.Message)
		}
	}
	if failed != nil {
		return fmt.Errorf("%d of %d cases failed: %s", len(failed), len(cases.Tests), strings.Join(failed, ", "))
	}
	return nil
}

func healthOfFile(path, script string, openLibs bool) (*healthStatus, error) {
	objects, err := readObjects(path)
	if err != nil {
		return nil, err
	}
	if len(objects) != 1 {
		return nil, fmt.Errorf("%s holds %d objects, not 1", path, len(objects))
	}
	return executeHealthLua(objects[0], script, openLibs)
}

func name(object map[string]interface{}) string {
	if metadata, ok := object["metadata"].(map[string]interface{}); ok {
		if n, ok := metadata["name"].(string); ok {
			return n
		}
	}
	return ""
}

// readObjects decodes every YAML/JSON document of one input (a List is its items). Integers become
// int64 and other numbers float64, as in the unstructured objects of Argo CD's cluster cache
// (k8s.io/apimachinery/pkg/util/json does the same).
func readObjects(input string) ([]map[string]interface{}, error) {
	var data []byte
	var err error
	if input == "-" {
		data, err = io.ReadAll(bufio.NewReader(os.Stdin))
	} else {
		data, err = os.ReadFile(input)
	}
	if err != nil {
		return nil, err
	}
	var objects []map[string]interface{}
	for _, document := range splitDocuments(data) {
		asJSON, err := yaml.YAMLToJSON(document)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", input, err)
		}
		decoder := json.NewDecoder(bytes.NewReader(asJSON))
		decoder.UseNumber()
		var raw interface{}
		if err := decoder.Decode(&raw); err != nil {
			return nil, fmt.Errorf("%s: %w", input, err)
		}
		object, ok := integers(raw).(map[string]interface{})
		if !ok {
			continue
		}
		if items, isList := object["items"].([]interface{}); isList && object["kind"] == "List" {
			for _, item := range items {
				if o, ok := item.(map[string]interface{}); ok {
					objects = append(objects, o)
				}
			}
			continue
		}
		objects = append(objects, object)
	}
	return objects, nil
}

func splitDocuments(data []byte) [][]byte {
	var documents [][]byte
	var current []string
	lines := strings.Split(string(data), "\n")
	for i, line := range lines {
		if strings.TrimRight(line, " \t\r") == "---" || i == len(lines)-1 {
			if i == len(lines)-1 && strings.TrimRight(line, " \t\r") != "---" {
				current = append(current, line)
			}
			if doc := strings.Join(current, "\n"); strings.TrimSpace(doc) != "" {
				documents = append(documents, []byte(doc))
			}
			current = nil
			continue
		}
		current = append(current, line)
	}
	return documents
}

func integers(value interface{}) interface{} {
	switch v := value.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []interface{}:
		for i := range v {
			v[i] = integers(v[i])
		}
	case map[string]interface{}:
		for k := range v {
			v[k] = integers(v[k])
		}
	}
	return value
}
