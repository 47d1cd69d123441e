#!/usr/bin/env bats
# tests/15-schema.bats -- phn_schema_validate (lib/schema.c) through the
# tests/t-schema driver: exit 0 valid, 1 invalid (one "PATH: message" line
# per problem on stdout), 100 broken schema or unreadable file.

bats_require_minimum_version 1.5.0

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
	TS=$BATS_TEST_DIRNAME/t-schema
	RR=$BATS_TEST_DIRNAME/../run_report.schema.json
	cd "$BATS_TEST_TMPDIR" || return 1
	cat >good.json <<-'EOF'
	{"schema_version": "1.0.0", "status": "ok", "summary": "did it",
	 "files_read": ["a.c", "b.c"], "files_written": [],
	 "artifacts": [
	  {"path": "out/r.md", "kind": "report", "description": "the report"},
	  {"path": "x.patch", "kind": "patch", "description": "a patch"}]}
	EOF
}

# schema JSON: the schema under test, in s.json.
schema() {
	printf '%s\n' "$1" >s.json
}

# ok JSON / bad JSON / broken [JSON]: validate JSON against s.json, which
# must accept it (exit 0, no output) / reject it (1) / be broken (100).
ok() {
	printf '%s\n' "$1" >d.json
	run -0 "$TS" s.json d.json
	assert_output ''
}

bad() {
	printf '%s\n' "$1" >d.json
	run -1 "$TS" s.json d.json
}

broken() {
	printf '%s\n' "${1:-0}" >d.json
	run -100 "$TS" s.json d.json
}

# rr [-N] FILTER: the good report edited by jq FILTER, against the real
# Run Report schema; expect exit 1 unless -N says otherwise.
rr() {
	local want=-1

	case $1 in -[0-9]*) want=$1; shift ;; esac
	jq -c "$1" good.json >d.json
	run "$want" "$TS" "$RR" d.json
}

@test "run report: a valid report passes" {
	rr -0 '.'
	assert_output ''
	rr -0 '.artifacts = [] | .files_read = [] | .summary = ""'
	assert_output ''
	rr -0 '.status = "needs_attention" | .schema_version = "1.22.333"'
	assert_output ''
}

@test "run report: a missing required key is named" {
	rr 'del(.summary)'
	assert_output 'summary: required property is missing'
	rr 'del(.artifacts[1].description)'
	assert_output 'artifacts[1].description: required property is missing'
}

@test "run report: an additional property is named" {
	rr '.extra = 1'
	assert_output 'extra: additional property is not allowed'
	rr '.["odd key"] = null'
	assert_output '["odd key"]: additional property is not allowed'
}

@test "run report: a bad status is not in the enum" {
	rr '.status = "done"'
	assert_output 'status: "done" is not one of ["ok","failed","needs_attention"]'
	rr '.status = "OK"'
	assert_output --partial 'status: "OK" is not one of'
}

@test "run report: wrong types, null included" {
	rr '.summary = 5'
	assert_output 'summary: expected string, got integer'
	rr '.summary = null'
	assert_output 'summary: expected string, got null'
	rr '.files_read = ["a", 2.5, true]'
	assert_output - <<-'EOF'
	files_read[1]: expected string, got number
	files_read[2]: expected string, got boolean
	EOF
	rr '.artifacts = {}'
	assert_output 'artifacts: expected array, got object'
	rr '.artifacts[0] = "x"'
	assert_output 'artifacts[0]: expected object, got string'
}

@test "run report: schema_version must match its pattern" {
	rr '.schema_version = "2.0.0"'
	assert_output 'schema_version: "2.0.0" does not match pattern ^1\.[0-9]+\.[0-9]+$'
	rr '.schema_version = "1.0"'
	assert_output --partial 'schema_version: "1.0" does not match'
	rr '.schema_version = "1.0.0-rc1"'
	assert_output --partial 'schema_version: "1.0.0-rc1" does not match'
	rr '.schema_version = "1x0.0"'
	assert_output --partial 'schema_version: "1x0.0" does not match'
}

@test "run report: a bad artifact kind" {
	rr '.artifacts[1].kind = "zip"'
	assert_output 'artifacts[1].kind: "zip" is not one of ["file","directory","report","patch","log","other"]'
}

@test "run report: an artifact with an extra key" {
	rr '.artifacts[0].url = "http://x"'
	assert_output 'artifacts[0].url: additional property is not allowed'
}

@test "run report: every problem is reported, in order" {
	rr '.status = 1 | del(.files_written) | .artifacts[0].kind = "zip" | .artifacts[1] = {} | .z = 0'
	assert_output - <<-'EOF'
	files_written: required property is missing
	status: expected string, got integer
	artifacts[0].kind: "zip" is not one of ["file","directory","report","patch","log","other"]
	artifacts[1].path: required property is missing
	artifacts[1].kind: required property is missing
	artifacts[1].description: required property is missing
	z: additional property is not allowed
	EOF
}

@test "problems are capped at 50 lines" {
	schema "{\"required\": [$(seq -s, -f '"k%g"' 1 60)]}"
	bad '{}'
	assert_equal "${#lines[@]}" 51
	assert_line --index 0 'k1: required property is missing'
	assert_line --index 49 'k50: required property is missing'
	assert_line --index 50 '(root): more than 50 problems; the rest are not shown'
	schema "{\"required\": [$(seq -s, -f '"k%g"' 1 50)]}"
	bad '{}'
	assert_equal "${#lines[@]}" 50
}

@test "type: each basic type" {
	schema '{"properties": {"s": {"type": "string"}, "b": {"type": "boolean"},
	    "o": {"type": "object"}, "a": {"type": "array"},
	    "n": {"type": "null"}}}'
	ok '{"s": "", "b": false, "o": {}, "a": [], "n": null}'
	bad '{"s": 1, "b": 0, "o": [], "a": {}, "n": 0}'
	assert_output - <<-'EOF'
	s: expected string, got integer
	b: expected boolean, got integer
	o: expected object, got array
	a: expected array, got object
	n: expected null, got integer
	EOF
	bad '{"s": null, "b": null, "o": null, "a": null}'
	assert_line --index 0 's: expected string, got null'
	assert_line --index 3 'a: expected array, got null'
}

@test "type: integer takes integral numbers, number takes both" {
	schema '{"items": {"type": "integer"}}'
	ok '[1, -0, 1.0, 1e2, -3.0, 18446744073709551615]'
	bad '[1.5]'
	assert_output '[0]: expected integer, got number'
	bad '["1", true, null]'
	assert_output - <<-'EOF'
	[0]: expected integer, got string
	[1]: expected integer, got boolean
	[2]: expected integer, got null
	EOF
	schema '{"items": {"type": "number"}}'
	ok '[1, 1.5, -2e-3, 0]'
	bad '["1.5"]'
	assert_output '[0]: expected number, got string'
}

@test "type: an array of types, with null" {
	schema '{"items": {"type": ["string", "null"]}}'
	ok '["a", null]'
	bad '["a", 1]'
	assert_output '[1]: expected string or null, got integer'
	schema '{"items": {"type": ["string", "integer", "null"]}}'
	ok '["a", 1, 2.0, null]'
	bad '[true]'
	assert_output '[0]: expected string, integer or null, got boolean'
}

@test "required: present keys pass, even when null" {
	schema '{"required": ["a", "b"]}'
	ok '{"a": null, "b": 0, "c": 1}'
	bad '{"b": 0}'
	assert_output 'a: required property is missing'
	ok '[]'
}

@test "properties: nested paths" {
	schema '{"properties": {"a": {"properties": {"b": {"type": "string"}}}}}'
	ok '{"a": {"b": "x"}, "z": 1}'
	ok '{"a": {}}'
	bad '{"a": {"b": 1}}'
	assert_output 'a.b: expected string, got integer'
	schema '{"properties": {"a b": {"properties": {"c.d": {"items": {"type": "string"}}}}}}'
	bad '{"a b": {"c.d": ["x", 2]}}'
	assert_output '["a b"]["c.d"][1]: expected string, got integer'
}

@test "additionalProperties: false, true and a schema" {
	schema '{"properties": {"a": {}}, "additionalProperties": false}'
	ok '{"a": 1}'
	bad '{"a": 1, "b": 2}'
	assert_output 'b: additional property is not allowed'
	schema '{"properties": {"a": {}}, "additionalProperties": true}'
	ok '{"a": 1, "b": 2}'
	schema '{"properties": {"a": {}}, "additionalProperties": {"type": "integer"}}'
	ok '{"a": "x", "b": 2}'
	bad '{"a": "x", "b": "y"}'
	assert_output 'b: expected integer, got string'
}

@test "enum: deep equality, numbers by value" {
	schema '{"enum": ["a", 1, null, [1, {"k": 2}], {"x": [true]}]}'
	ok '"a"'
	ok '1.0'
	ok '[1.0, {"k": 2e0}]'
	ok '{"x": [true]}'
	schema '{"properties": {"n": {"enum": [null]}}}'
	ok '{"n": null}'
	bad '{"n": 0}'
	assert_output 'n: 0 is not one of [null]'
	schema '{"enum": ["a", 1, [1, {"k": 2}], {"x": [true]}]}'
	bad '"b"'
	assert_output '(root): "b" is not one of ["a",1,[1,{"k":2}],{"x":[true]}]'
	bad '"1"'
	bad 'true'
	bad '[{"k": 2}, 1]'
	bad '{"x": [true], "y": 1}'
	bad '{"x": [1]}'
	assert_output --partial '(root): {"x":[1]} is not one of'
}

@test "const: deep equality, numbers by value, key order ignored" {
	schema '{"const": {"a": [1, 2.5], "b": {"c": null}}}'
	ok '{"b": {"c": null}, "a": [1.0, 2.50]}'
	bad '{"a": [2.5, 1], "b": {"c": null}}'
	assert_output '(root): {"a":[2.5,1],"b":{"c":null}} is not the constant {"a":[1,2.5],"b":{"c":null}}'
	bad '{"a": [1, 2.5], "b": {"c": null}, "d": 1}'
	bad '{"a": [1, 2.5], "b": {"c": false}}'
	bad '{"a": [1, 2.5], "b": {"d": null}}'
	schema '{"const": 1}'
	ok '1'
	ok '1.0'
	ok '100e-2'
	bad '"1"'
	assert_output '(root): "1" is not the constant 1'
	bad 'true'
	bad '1.000001'
	schema '{"properties": {"n": {"const": null}}}'
	ok '{"n": null}'
	bad '{"n": false}'
	assert_output 'n: false is not the constant null'
}

@test "pattern: unanchored search; anchors when written" {
	schema '{"pattern": "b+c"}'
	ok '"abbcd"'
	ok '17'
	bad '"acb"'
	assert_output '(root): "acb" does not match pattern b+c'
	schema '{"pattern": "^b"}'
	bad '"ab"'
	ok '"ba"'
}

@test "pattern: lazy quantifiers match as in ECMA; patterns too costly for the regex engine are refused" {
	schema '{"pattern": "^x+?y$"}'
	ok '"xxy"'
	bad '"y"'
	schema '{"pattern": "^a**$"}'
	broken
	assert_output --partial 'schema #/pattern: cannot use pattern ^a**$'
	schema "{\"pattern\": \"^.{0,2000}\$\"}"
	broken
	assert_output --partial 'schema #/pattern: cannot use pattern'
	schema "{\"pattern\": \"$(printf '(%.0s' $(seq 40))a$(printf ')%.0s' $(seq 40))\"}"
	broken
	assert_output --partial 'schema #/pattern: cannot use pattern'
	schema '{"pattern": "^.{0,20}$"}'
	ok '"short"'
}

@test "pattern: ECMA escapes are rewritten for POSIX" {
	schema '{"pattern": "^\\d+\\.\\d+$"}'
	ok '"12.5"'
	bad '"dd.d"'
	bad '"12x5"'
	schema '{"pattern": "^[\\w.\\-]+$"}'
	ok '"a_b.c-D9"'
	bad '"a b"'
	bad '"a\\b"'
	schema '{"pattern": "^[a\\-z]$"}'
	ok '"-"'
	ok '"z"'
	bad '"b"'
	schema '{"pattern": "^\\S+\\s\\D$"}'
	ok '"ab\tx"'
	bad '"ab 1"'
	schema '{"pattern": "^\\p{L}$"}'
	broken
	assert_output --partial 'schema #/pattern: cannot use pattern ^\p{L}$: unsupported escape'
}

@test "pattern: multi-byte UTF-8 characters are characters" {
	schema '{"pattern": "^é+.$"}'
	ok '"ééé"'
	ok '"é日"'
	bad '"e"'
	schema '{"pattern": "^.{3}$"}'
	ok '"日本語"'
	bad '"日本"'
	assert_output '(root): "日本" does not match pattern ^.{3}$'
	schema '{"pattern": "^[^é]$"}'
	ok '"e"'
	bad '"é"'
}

@test "pattern: a string with NUL is searched whole" {
	schema '{"pattern": "^a$"}'
	bad '"a\u0000b"'
	schema '{"pattern": "b$", "maxLength": 3, "minLength": 3}'
	ok '"a\u0000b"'
}

@test "pattern: an uncompilable pattern breaks the schema" {
	schema '{"properties": {"a": {"pattern": "(ab"}}}'
	broken '{}'
	assert_output --regexp '^schema #/properties/a/pattern: cannot compile pattern \(ab: .+'
	schema '{"patternProperties": {"[": {}}}'
	broken '{}'
	assert_output --partial 'schema #/patternProperties: cannot use pattern [: missing ]'
	schema '{"pattern": 5}'
	broken
	assert_output 'schema #/pattern: must be a string'
}

@test "items, minItems, maxItems" {
	schema '{"items": {"type": "string"}, "minItems": 1, "maxItems": 2}'
	ok '["a"]'
	ok '["a", "b"]'
	ok '"not an array"'
	bad '[]'
	assert_output '(root): 0 items, fewer than minItems 1'
	bad '["a", "b", "c"]'
	assert_output '(root): 3 items, more than maxItems 2'
	bad '["a", 1]'
	assert_output '[1]: expected string, got integer'
	schema '{"items": {"items": {"type": "integer"}}}'
	bad '[[1], [2, "x"]]'
	assert_output '[1][1]: expected integer, got string'
}

@test "minLength and maxLength count code points" {
	schema '{"minLength": 3, "maxLength": 3}'
	ok '"abc"'
	ok '"日本語"'
	ok '"é€😀"'
	ok '"\u00e9\u20ac\ud83d\ude00"'
	bad '"日本"'
	assert_output '(root): length 2 is less than minLength 3'
	bad '"日本語!"'
	assert_output '(root): length 4 is more than maxLength 3'
	bad '"ab"'
	ok '12'
}

@test "minimum, maximum and the exclusive forms" {
	schema '{"minimum": 1, "maximum": 2.5}'
	ok '1'
	ok '1.0'
	ok '2.5'
	bad '0.999'
	assert_output '(root): 0.999 is less than minimum 1'
	bad '3'
	assert_output '(root): 3 is more than maximum 2.5'
	ok '"x"'
	schema '{"exclusiveMinimum": 1, "exclusiveMaximum": 2}'
	ok '1.5'
	bad '1'
	assert_output '(root): 1 is not more than exclusiveMinimum 1'
	bad '2.0'
	assert_output '(root): 2.0 is not less than exclusiveMaximum 2'
	schema '{"minimum": 1, "exclusiveMinimum": true}'
	bad '1'
	assert_output '(root): 1 is not more than minimum 1'
}

@test "minimum and maximum compare large integers exactly" {
	schema '{"maximum": 9007199254740992}'
	ok '9007199254740992.0'
	bad '9007199254740993'
	assert_output '(root): 9007199254740993 is more than maximum 9007199254740992'
	schema '{"minimum": -9223372036854775808, "maximum": 18446744073709551615}'
	ok '-9223372036854775808'
	ok '18446744073709551615'
	bad '-9223372036854777856.0'
	bad '1.8446744073709552e19'
	schema '{"maximum": 9007199254740992.0}'
	ok '9007199254740992'
	bad '9007199254740993'
	assert_output '(root): 9007199254740993 is more than maximum 9007199254740992.0'
}

@test "\$ref: #, \$defs, definitions, escaped pointers and \$id" {
	schema '{"$id": "https://e.invalid/s.json",
	    "$defs": {"str": {"type": "string"}, "a/b": {"const": 1},
	        "t~x": {"const": 2}, "sp ace": {"const": 3}},
	    "definitions": {"int": {"type": "integer"}},
	    "properties": {"s": {"$ref": "#/$defs/str"},
	        "i": {"$ref": "#/definitions/int"},
	        "p": {"$ref": "#/$defs/a~1b"}, "q": {"$ref": "#/$defs/t~0x"},
	        "r": {"$ref": "#/$defs/sp%20ace"},
	        "u": {"$ref": "https://e.invalid/s.json#/$defs/str"},
	        "v": {"$ref": "#/properties/s"}}}'
	ok '{"s": "x", "i": 1, "p": 1, "q": 2, "r": 3, "u": "y", "v": "z"}'
	bad '{"s": 1, "i": "x", "p": 2, "q": 1, "r": 0, "u": 0, "v": 0}'
	assert_output - <<-'EOF'
	s: expected string, got integer
	i: expected integer, got string
	p: 2 is not the constant 1
	q: 1 is not the constant 2
	r: 0 is not the constant 3
	u: expected string, got integer
	v: expected string, got integer
	EOF
}

@test "\$ref: a recursive schema over deeper values is fine" {
	schema '{"type": "object", "properties": {"kids": {"items": {"$ref": "#"}},
	    "name": {"type": "string"}}, "additionalProperties": false}'
	ok '{"name": "a", "kids": [{"name": "b", "kids": [{"kids": []}]}]}'
	bad '{"kids": [{"kids": [{"name": 1, "x": 0}]}]}'
	assert_output - <<-'EOF'
	kids[0].kids[0].name: expected string, got integer
	kids[0].kids[0].x: additional property is not allowed
	EOF
}

@test "\$ref: loops break the schema" {
	schema '{"$ref": "#"}'
	broken
	assert_output 'schema #: $ref loop: the schema applies to the same value again'
	schema '{"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
	    "properties": {"x": {"$ref": "#/$defs/a"}}}'
	broken '{}'
	assert_output --partial '$ref loop'
	schema '{"$defs": {"a": {"allOf": [{"anyOf": [{"$ref": "#/$defs/a"}]}]}}}'
	broken
	assert_output 'schema #/$defs/a: $ref loop: the schema applies to the same value again'
}

@test "\$ref: an unresolvable reference breaks the schema" {
	schema '{"properties": {"a": {"$ref": "#/$defs/nope"}}}'
	broken '{}'
	assert_output 'schema #/properties/a/$ref: cannot resolve "#/$defs/nope" in this document'
	schema '{"$ref": "other.json#/x"}'
	broken
	assert_output --partial 'cannot resolve "other.json#/x"'
	schema '{"$defs": {"a": 5}, "$ref": "#/$defs/a"}'
	broken
	assert_output 'schema #/$defs/a: not a schema (want an object or a boolean)'
}

@test "allOf, anyOf, oneOf and not" {
	schema '{"allOf": [{"type": "integer"}, {"minimum": 2}]}'
	ok '3'
	bad '1'
	assert_output '(root): 1 is less than minimum 2'
	schema '{"anyOf": [{"type": "string"}, {"minimum": 2}]}'
	ok '"x"'
	ok '5'
	bad '1'
	assert_output '(root): matches none of the schemas in anyOf'
	schema '{"oneOf": [{"type": "integer"}, {"minimum": 2}]}'
	ok '1'
	ok '2.5'
	bad '3'
	assert_output '(root): matches 2 schemas in oneOf, not exactly one'
	bad '1.5'
	assert_output '(root): matches none of the schemas in oneOf'
	schema '{"not": {"type": "string"}}'
	ok '1'
	bad '"x"'
	assert_output '(root): matches the schema in not'
	schema '{"anyOf": []}'
	broken
	assert_output 'schema #/anyOf: must be a non-empty array of schemas'
}

@test "patternProperties, min/maxProperties and uniqueItems" {
	schema '{"patternProperties": {"^x_": {"type": "integer"}},
	    "additionalProperties": false, "minProperties": 1, "maxProperties": 2}'
	ok '{"x_a": 1}'
	bad '{"x_a": "1", "y": 2}'
	assert_output - <<-'EOF'
	x_a: expected integer, got string
	y: additional property is not allowed
	EOF
	bad '{}'
	assert_output '(root): 0 properties, fewer than minProperties 1'
	bad '{"x_a": 1, "x_b": 2, "x_c": 3}'
	assert_output '(root): 3 properties, more than maxProperties 2'
	schema '{"uniqueItems": true}'
	ok '[1, "1", [1], {"a": 1}, {"a": 2}]'
	bad '[1, {"a": [1]}, 1.0, {"a": [1.0]}]'
	assert_output - <<-'EOF'
	[2]: equals item 0, but uniqueItems is set
	[3]: equals item 1, but uniqueItems is set
	EOF
}

@test "boolean schemas" {
	schema 'true'
	ok '{"anything": [1]}'
	schema 'false'
	bad '1'
	assert_output '(root): no value is allowed here'
	schema '{"properties": {"a": false, "b": true}}'
	ok '{"b": 1}'
	bad '{"a": null}'
	assert_output 'a: no value is allowed here'
}

@test "annotations and unknown keywords are ignored" {
	schema '{"$schema": "https://json-schema.org/draft/2020-12/schema",
	    "$id": "urn:x", "title": "t", "description": "d", "default": 5,
	    "examples": [1], "x-frobnicate": {"type": "integer"}, "format": "email",
	    "type": "string"}'
	ok '"not an email"'
	bad '5'
	assert_output '(root): expected string, got integer'
}

@test "malformed keywords break the schema" {
	schema '[]'
	broken
	assert_output 'schema #: not a schema (want an object or a boolean)'
	schema '{"type": "strin"}'
	broken
	assert_output --partial 'schema #/type: must be a type name'
	schema '{"type": []}'
	broken
	schema '{"required": ["a", 1]}'
	broken
	assert_output 'schema #/required: must be an array of strings'
	schema '{"properties": {"a": {"minLength": -1}, "b": {"maxItems": 1.5}}}'
	broken '{}'
	assert_output - <<-'EOF'
	schema #/properties/a/minLength: must be a non-negative integer
	schema #/properties/b/maxItems: must be a non-negative integer
	EOF
	schema '{"items": [{}]}'
	broken
	assert_output 'schema #/items: the array (tuple) form is not supported'
	schema '{"enum": 1, "minimum": "0"}'
	broken
	assert_output - <<-'EOF'
	schema #/enum: must be an array
	schema #/minimum: must be a number
	EOF
}

@test "the driver: usage, unreadable and malformed files exit 100" {
	run -100 "$TS" s.json
	run -100 --separate-stderr "$TS" nosuch.json good.json
	assert_output ''
	assert_equal "$stderr" 't-schema: nosuch.json: No such file or directory'
	printf '{"a": }\n' >d.json
	run -100 --separate-stderr "$TS" "$RR" d.json
	assert_equal "${stderr%%:*}" 't-schema'
}
