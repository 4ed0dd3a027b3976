// Command kstatus prints the kstatus verdict of Kubernetes objects, computed by the library Flux,
// kpt and cli-utils' own applier use: sigs.k8s.io/cli-utils pkg/kstatus/status.Compute. The tests run
// it on the WebAppScalings the operator wrote, so the conditions are checked by the reader they are
// written for, not by a re-implementation of it.
//
// Usage: kstatus [FILE...]   (no FILE, or "-": stdin)
//
// Each input holds YAML or JSON objects: one, several YAML documents, or a List (what `kubectl get -o
// json` prints for several). For each object one JSON line goes to stdout:
//
//	{"name":"shop","status":"Current","message":"Resource is current"}
//
// Exit status 1 when an input cannot be read or status.Compute returns an error.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	inputs := os.Args[1:]
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
			u := &unstructured.Unstructured{Object: object}
			result, err := status.Compute(u)
			if err != nil {
				fail(fmt.Errorf("%s %s: %w", u.GetKind(), u.GetName(), err))
			}
			if err := out.Encode(verdict{u.GetName(), string(result.Status), result.Message}); err != nil {
				fail(err)
			}
		}
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}

// readObjects decodes every object of one input. Integers become int64, as they are in the
// unstructured objects a client-go informer hands a controller (k8s.io/apimachinery/pkg/util/json):
// status.Compute reads metadata.generation and status.observedGeneration with NestedInt64, which
// refuses the float64 a plain encoding/json decode would give.
func readObjects(input string) ([]map[string]interface{}, error) {
	var stream io.Reader = os.Stdin
	if input != "-" {
		file, err := os.Open(input)
		if err != nil {
			return nil, err
		}
		defer file.Close()
		stream = file
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(stream))
	var objects []map[string]interface{}
	for {
		document, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objects, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", input, err)
		}
		if len(bytes.TrimSpace(document)) == 0 {
			continue
		}
		asJSON, err := yaml.YAMLToJSON(document)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", input, err)
		}
		var object map[string]interface{}
		if err := utiljson.Unmarshal(asJSON, &object); err != nil {
			return nil, fmt.Errorf("%s: %w", input, err)
		}
		if object == nil {
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
}
