#!/usr/bin/env python3
"""Size checks for C++ sources: functions over a line budget, files over a line cap.

    function_length.py [--max-function-lines=60] [--max-file-lines=N]
                       [--file-cap=GLOB:N ...] [--exclude=GLOB ...] PATH...

PATH is a file or a folder (searched recursively for *.cc, *.h, *.cpp, *.hpp). Every finding
is printed as `path:line: ...`; the exit status is 1 if there is any, 0 otherwise, 2 on a usage
error. Issue 17's rule is "no function in primary/, secondary/ or failover/ over 60 lines".

What counts as a function: every definition whose body opens at namespace or class scope —
free functions, member functions defined in or out of the class, constructors and
destructors (with their initializer lists), operators, and test bodies (`TEST(...) {`,
`TEST_F(...) {`): a test is code that must be read too, so tests are checked like the rest
(use --exclude='*_test.cc' to leave them out). Its length runs from the first line of the
definition (including a `template <...>` line) to the line of its closing brace, both counted.
Everything inside a body belongs to that function: lambdas, local classes and their member
functions, nested blocks. Not counted as functions: braces of namespaces, classes, enums and
initializers (`int table[] = {...};`, `Foo foo{...};`), including a lambda that initializes a
variable at namespace scope.

The reader is a small lexer, not a compiler: it blanks comments, string and character literals
(raw strings too) and preprocessor lines, keeping line numbers, then matches braces. A macro
that expands to a brace (`#define BEGIN {`) would confuse it; the project has none.

Standard library only (Python 3.7+).
"""

import argparse
import bisect
import dataclasses
import fnmatch
import os
import re
import sys
from typing import Iterable, List, Optional, Tuple

SOURCE_SUFFIXES = (".cc", ".h", ".cpp", ".hpp", ".cxx", ".hh")


@dataclasses.dataclass(frozen=True)
class Function:
    """One function definition: its name as written and its first and last line (1-based)."""

    name: str
    first_line: int
    last_line: int

    @property
    def lines(self) -> int:
        return self.last_line - self.first_line + 1


# --- Lexing: blank out everything that is not code, keeping every newline. -----------------


def _blank(text: str) -> str:
    """The same text with every character but newlines turned into a space."""
    return re.sub(r"[^\n]", " ", text)


def _raw_string_end(source: str, start: int) -> int:
    """Index just past the raw string literal whose `R"` starts at `start`."""
    open_paren = source.find("(", start + 2)
    if open_paren < 0:
        return len(source)
    delimiter = source[start + 2:open_paren]
    close = source.find(")" + delimiter + '"', open_paren + 1)
    return len(source) if close < 0 else close + len(delimiter) + 2


def _quoted_end(source: str, start: int) -> int:
    """Index just past the "..." or '...' literal starting at `start` (escapes honoured)."""
    quote = source[start]
    i = start + 1
    while i < len(source):
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == quote or c == "\n":  # an unterminated literal ends at the line's end
            return i + 1
        i += 1
    return len(source)


def _token_before(source: str, index: int) -> str:
    """The identifier or number that ends just before `index` (empty if none)."""
    start = index
    while start > 0 and (source[start - 1].isalnum() or source[start - 1] == "_"):
        start -= 1
    return source[start:index]


def _preprocessor_end(source: str, start: int) -> int:
    """Index of the newline that ends the directive at `start` (line continuations followed)."""
    i = start
    while True:
        newline = source.find("\n", i)
        if newline < 0:
            return len(source)
        if source[newline - 1] != "\\":
            return newline
        i = newline + 1


def _at_line_start(source: str, index: int) -> bool:
    line_start = source.rfind("\n", 0, index) + 1
    return source[line_start:index].strip() == ""


def strip_non_code(source: str) -> str:
    """`source` with comments, literals and preprocessor lines blanked; newlines kept.

    A string literal becomes `""` followed by spaces and a character literal `''`, so that
    what is left still reads as code (`extern "C" {` stays recognisable).
    """
    out: List[str] = []
    i = 0
    while i < len(source):
        c = source[i]
        two = source[i:i + 2]
        end = None
        replacement = None
        if two == "//":
            end = source.find("\n", i)
            end = len(source) if end < 0 else end
        elif two == "/*":
            close = source.find("*/", i + 2)
            end = len(source) if close < 0 else close + 2
        elif c == "#" and _at_line_start(source, i):
            end = _preprocessor_end(source, i)
        elif c == '"' and _token_before(source, i).endswith("R"):
            end = _raw_string_end(source, i - 1)
            replacement = '""'
        elif c == '"':
            end = _quoted_end(source, i)
            replacement = '""'
        elif c == "'":
            token = _token_before(source, i)
            if token[:1].isdigit():  # a digit separator: 1'000'000
                out.append(c)
                i += 1
                continue
            end = _quoted_end(source, i)
            replacement = "''"
        if end is None:
            out.append(c)
            i += 1
            continue
        blanked = _blank(source[i:end])
        if replacement is not None:
            blanked = replacement + blanked[len(replacement):]
        out.append(blanked)
        i = end
    return "".join(out)


# --- Classifying what a `{` at namespace or class scope opens. -----------------------------

_TEMPLATE_PREFIX = re.compile(r"^\s*template\s*<")
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_NOT_A_NAME = {
    "decltype", "alignas", "__attribute__", "noexcept", "sizeof", "requires", "throw",
    "static_assert", "if", "for", "while", "switch", "return",
}


def _skip_template_prefixes(head: str) -> str:
    """`head` without leading `template <...>` clauses (nested angle brackets matched)."""
    while True:
        match = _TEMPLATE_PREFIX.match(head)
        if not match:
            return head
        depth = 0
        for i in range(match.end() - 1, len(head)):
            if head[i] == "<":
                depth += 1
            elif head[i] == ">":
                depth -= 1
                if depth == 0:
                    head = head[i + 1:]
                    break
        else:
            return head


def _matching_paren(head: str, open_index: int) -> int:
    depth = 0
    for i in range(open_index, len(head)):
        if head[i] == "(":
            depth += 1
        elif head[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def _parameter_list(head: str) -> Optional[Tuple[int, int, str]]:
    """(open, close, name) of the parameter list in a definition head, or None.

    The parameter list is the first top-level `(` that follows a name (`f(`, `Foo::Foo(`,
    `operator==(`, `TEST(`), skipping `decltype(`, `alignas(`, `__attribute__((` and the like.
    """
    i = 0
    while i < len(head):
        c = head[i]
        if c == "(":
            before = head[:i].rstrip()
            if before.endswith("operator") and re.match(r"\(\s*\)", head[i:]):
                i = head.find(")", i) + 1  # `operator()(`: the first () is the operator's name
                continue
            operator = re.search(r"[\w:]*operator\s*(\(\s*\)|[^\w\s(]+|\s\w[\w\s:<>*&]*)$",
                                 before)
            name_match = re.search(r"(~?[A-Za-z_][\w:~<>]*)$", before)
            name = operator.group(0) if operator else (name_match.group(1) if name_match else "")
            base = re.sub(r".*::", "", name)
            if name and base not in _NOT_A_NAME:
                close = _matching_paren(head, i)
                return (i, close, name) if close >= 0 else None
            close = _matching_paren(head, i)
            if close < 0:
                return None
            i = close + 1
            continue
        i += 1
    return None


def _has_top_level_assignment(text: str) -> bool:
    """Whether `text` holds an `=` that is neither part of an operator's name nor inside ()."""
    text = re.sub(r"operator\s*[^\w\s(]+", "operator", text)
    depth = 0
    for i, c in enumerate(text):
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "=" and depth == 0:
            neighbours = text[i - 1:i] + text[i + 1:i + 2]
            if "=" not in neighbours and not re.match(r"[<>!]", text[i - 1:i]):
                return True
    return False


def _without_parentheses(text: str) -> str:
    """`text` with every parenthesized group (nested ones included) removed."""
    previous = None
    while previous != text:
        previous, text = text, re.sub(r"\([^()]*\)", " ", text)
    return text


def _is_class_head(head: str) -> bool:
    """Whether a head that starts with class/struct/union/enum and holds parentheses still
    opens a class: `class CAPABILITY("mutex") Mutex {`, `struct S : Base<decltype(f())> {`,
    but not a function with an elaborated return type (`struct stat* Find(int fd) {`)."""
    words = _without_parentheses(head)
    return re.fullmatch(r"\s*(class|struct|union|enum)(\s+class)?(\s+[\w:]+)+\s*(final\s*)?"
                        r"(:(?!:).*)?", words, re.DOTALL) is not None


def classify_head(head: str) -> str:
    """What the `{` that ends `head` opens: namespace, class, function, init_list or data.

    `init_list` means the head is a constructor's, inside its member initializer list, and this
    `{` initializes a member (`a_{x}`): the body's `{` is still to come. `data` is every brace
    that holds no code of its own (enum values, aggregate and member initializers).
    """
    head = _skip_template_prefixes(head.strip())
    head = re.sub(r"\[\[.*?\]\]", " ", head).strip()
    words = head.split()
    if not words or words[0] == "namespace" or head.startswith("inline namespace"):
        return "namespace"
    if re.fullmatch(r"extern\s*\"\"", head):
        return "namespace"  # extern "C" { ... }: transparent
    parameters = _parameter_list(head)
    class_keyword = re.match(r"(typedef\s+)?(class|struct|union|enum)\b", head)
    if class_keyword and (parameters is None or _is_class_head(head)):
        return "data" if class_keyword.group(2) == "enum" else "class"
    if parameters is None:
        return "data"
    _, close, _ = parameters
    if _has_top_level_assignment(head[:parameters[0]]):
        return "data"  # `auto f = [](int) {` or `Foo x = Make(1) {...`
    tail = head[close + 1:]
    if re.match(r"\s*:(?!:)", tail):
        # Constructor with a member initializer list: the body's `{` follows a `)` or `}`.
        return "function" if re.search(r"[)}]\s*$", tail) else "init_list"
    if _has_top_level_assignment(tail):
        return "data"
    return "function"


def function_name(head: str) -> str:
    parameters = _parameter_list(_skip_template_prefixes(head.strip()))
    if parameters is None:
        return "?"
    name = parameters[2]
    if re.fullmatch(r"TEST(_F|_P)?|TYPED_TEST(_P)?", name):
        inner = head[head.find("(") + 1:head.find(")")]
        return name + "(" + ",".join(part.strip() for part in inner.split(",")) + ")"
    return name


# --- Scanning: brace matching with a scope stack. -------------------------------------------


def _line_of(index: int, line_starts: List[int]) -> int:
    return bisect.bisect_right(line_starts, index)


def _head_start(code: str, start: int, end: int) -> int:
    """Index of the first non-blank character in code[start:end] (end if none)."""
    i = start
    while i < end and code[i].isspace():
        i += 1
    return i


_ACCESS_LABEL = re.compile(r"\b(public|private|protected)\s*:(?!:)")


def find_functions(source: str) -> List[Function]:
    """Every function definition of a C++ source text (see the module's docstring)."""
    code = strip_non_code(source)
    line_starts = [0] + [i + 1 for i, c in enumerate(code) if c == "\n"]
    functions: List[Function] = []
    # Scope stack entries: (kind, head_start, name). Kinds: namespace, class, function, block.
    stack: List[Tuple[str, int, str]] = []
    head_begin = 0  # where the current statement head at namespace/class scope starts
    i = 0
    while i < len(code):
        c = code[i]
        in_code = any(kind in ("function", "block") for kind, _, _ in stack)
        if c == "{":
            if in_code:
                stack.append(("block", i, ""))
            else:
                start = _head_start(code, head_begin, i)
                head = code[start:i]
                kind = classify_head(head)
                if kind in ("init_list", "data"):
                    i = _skip_braces(code, i)  # no code of its own; the head goes on
                    continue
                stack.append((kind, start, function_name(head) if kind == "function" else ""))
                head_begin = i + 1
        elif c == "}":
            if stack:
                kind, start, name = stack.pop()
                if kind == "function":
                    functions.append(Function(name, _line_of(start, line_starts),
                                              _line_of(i, line_starts)))
            if not any(kind in ("function", "block") for kind, _, _ in stack):
                head_begin = i + 1
        elif c == ";" and not in_code:
            head_begin = i + 1
        elif c == ":" and not in_code and _ACCESS_LABEL.match(code, _label_start(code, i)):
            head_begin = i + 1
        i += 1
    return functions


def _label_start(code: str, colon: int) -> int:
    start = colon
    while start > 0 and (code[start - 1].isalnum() or code[start - 1] in "_ \t"):
        start -= 1
    return _head_start(code, start, colon)


def _skip_braces(code: str, open_index: int) -> int:
    """Index just past the `}` matching the `{` at `open_index`."""
    depth = 0
    for i in range(open_index, len(code)):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i + 1
    return len(code)


# --- Command line. --------------------------------------------------------------------------


class UsageError(Exception):
    pass


def source_files(paths: Iterable[str], excludes: List[str]) -> List[str]:
    """The C++ sources under `paths`, minus `excludes`. A folder without any is an error: a
    check that finds nothing to read must not pass (a filegroup left out of a test's data)."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            in_folder = []
            for root, dirs, files in os.walk(path, followlinks=True):
                dirs.sort()
                in_folder.extend(os.path.join(root, f) for f in sorted(files)
                                 if f.endswith(SOURCE_SUFFIXES))
            if not in_folder:
                raise UsageError("no C++ sources in folder " + path)
            found.extend(in_folder)
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise UsageError("no such file or folder: " + path)
    unique = list(dict.fromkeys(os.path.normpath(f) for f in found))  # `a` and `a/sub` overlap
    return [f for f in unique if not any(fnmatch.fnmatch(f, pattern) for pattern in excludes)]


def _file_cap(value: str) -> Tuple[str, int]:
    glob, _, limit = value.rpartition(":")
    if not glob or not limit.isdigit():
        raise argparse.ArgumentTypeError("expected GLOB:N, got " + repr(value))
    return glob, int(limit)


def parse_arguments(argv: List[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Report C++ functions and files over a line budget.")
    parser.add_argument("paths", nargs="+", help="files or folders to check")
    parser.add_argument("--max-function-lines", type=int, default=60,
                        help="longest allowed function, in lines (default 60)")
    parser.add_argument("--max-file-lines", type=int, default=0,
                        help="longest allowed file, in lines, for every file (0: no cap)")
    parser.add_argument("--file-cap", type=_file_cap, action="append", default=[],
                        metavar="GLOB:N",
                        help="at most N lines for files matching GLOB (repeatable)")
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB",
                        help="skip files matching GLOB (repeatable), e.g. '*_test.cc'")
    parser.add_argument("--root", default=os.environ.get("BUILD_WORKSPACE_DIRECTORY"),
                        help="change to this folder first (paths are relative to it); "
                        "under `bazel run`, the workspace")
    return parser.parse_args(argv)


def check_file(path: str, arguments: argparse.Namespace) -> List[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        source = f.read()
    findings = []
    line_count = source.count("\n") + (0 if source.endswith("\n") or not source else 1)
    caps = [limit for glob, limit in arguments.file_cap if fnmatch.fnmatch(path, glob)]
    if arguments.max_file_lines:
        caps.append(arguments.max_file_lines)
    if caps and line_count > min(caps):
        findings.append("%s:1: file has %d lines (cap %d)" % (path, line_count, min(caps)))
    for function in find_functions(source):
        if function.lines > arguments.max_function_lines:
            findings.append("%s:%d: function %s has %d lines (max %d)" % (
                path, function.first_line, function.name, function.lines,
                arguments.max_function_lines))
    return findings


def main(argv: List[str]) -> int:
    arguments = parse_arguments(argv)
    if arguments.root:
        os.chdir(arguments.root)
    try:
        files = source_files(arguments.paths, arguments.exclude)
    except UsageError as error:
        print("function_length: %s" % error, file=sys.stderr)
        return 2
    findings = []
    for path in files:
        findings.extend(check_file(path, arguments))
    for finding in findings:
        print(finding)
    print("function_length: %d file(s) checked, %d finding(s)" % (len(files), len(findings)))
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
