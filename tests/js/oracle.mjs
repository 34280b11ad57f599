// GitHub's expression evaluator (@actions/expressions) as an oracle for tests/test_expressions.py.
// Reads one JSON case a line on stdin: {"expr": "...", "contexts": <tagged>, "status": {"success": true, ...}}
// and writes one JSON line per case: {"ok": true, "value": <tagged>} or {"ok": false, "phase": "parse"|"eval", ...}.
// Values are tagged so that types survive the trip: NaN, -0, Infinity, filtered arrays and key order included.
import { createInterface } from "node:readline";
import { Evaluator, Lexer, Parser, data } from "@actions/expressions";
import { FilteredArray } from "@actions/expressions/filtered_array";

function fromTagged(t) {
  switch (t.t) {
    case "null":
      return new data.Null();
    case "bool":
      return new data.BooleanData(t.v);
    case "num":
      return new data.NumberData(Number(t.v));
    case "str":
      return new data.StringData(t.v);
    case "arr":
      return new data.Array(...t.v.map(fromTagged));
    case "obj":
      return new data.Dictionary(...t.v.map(([key, value]) => ({ key, value: fromTagged(value) })));
  }
  throw new Error(`bad tag ${t.t}`);
}

function toTagged(d) {
  switch (d.kind) {
    case data.Kind.Null:
      return { t: "null" };
    case data.Kind.Boolean:
      return { t: "bool", v: d.value };
    case data.Kind.Number:
      return { t: "num", v: Object.is(d.value, -0) ? "-0" : String(d.value) };
    case data.Kind.String:
      return { t: "str", v: d.value };
    case data.Kind.Array:
      return { t: "arr", filtered: d instanceof FilteredArray, v: d.values().map(toTagged) };
    case data.Kind.Dictionary:
      return { t: "obj", v: d.pairs().map(p => [p.key, toTagged(p.value)]) };
  }
  throw new Error(`bad kind ${d.kind}`);
}

// success(), failure(), cancelled() and always() are not built in: GitHub's services supply them as extension
// functions, and so does this harness, with the values the case gives.
function statusFunctions(status) {
  return ["success", "failure", "cancelled", "always"].map(name => ({
    name,
    description: name,
    minArgs: 0,
    maxArgs: 0,
    call: () => new data.BooleanData(Boolean(status[name]))
  }));
}

function run(c) {
  const contexts = fromTagged(c.contexts);
  const funcs = statusFunctions(c.status ?? {});
  let tree;
  try {
    const tokens = new Lexer(c.expr).lex().tokens;
    tree = new Parser(tokens, contexts.pairs().map(p => p.key), funcs).parse();
  } catch (e) {
    return { ok: false, phase: "parse", error: String(e.message) };
  }
  try {
    const result = new Evaluator(tree, contexts, new Map(funcs.map(f => [f.name, f]))).evaluate();
    return { ok: true, value: toTagged(result) };
  } catch (e) {
    return { ok: false, phase: "eval", error: String(e.message) };
  }
}

for await (const line of createInterface({ input: process.stdin, crlfDelay: Infinity })) {
  if (line.trim() === "") continue;
  process.stdout.write(JSON.stringify(run(JSON.parse(line))) + "\n");
}
