"""Tests of function_length.py: sources it must flag, and sources it must leave alone.

Each "must flag" case is also the negative control of a "must not flag" one: the same shape one
line shorter (or the brace hidden in a literal) must pass, so neither oracle is vacuous.
"""

import contextlib
import io
import os
import tempfile
import unittest

import function_length


def body(lines: int) -> str:
    """`lines` lines of statements."""
    return "".join("  x += %d;\n" % i for i in range(lines))


def function_of(total_lines: int, signature: str = "int F(int x) {") -> str:
    """A definition spanning exactly `total_lines` lines: signature, statements, `}`."""
    return signature + "\n" + body(total_lines - 2) + "}\n"


def lengths(source: str):
    return [(f.name, f.lines) for f in function_length.find_functions(source)]


class FindFunctionsTest(unittest.TestCase):
    def test_counts_from_the_signature_to_the_closing_brace(self):
        source = "namespace a {\n\n" + function_of(61) + "}  // namespace a\n"
        self.assertEqual(lengths(source), [("F", 61)])
        [function] = function_length.find_functions(source)
        self.assertEqual((function.first_line, function.last_line), (3, 63))

    def test_a_multi_line_signature_and_template_line_count(self):
        source = "template <typename T>\nT F(T a,\n    T b) {\n" + body(3) + "}\n"
        self.assertEqual(lengths(source), [("F", 7)])

    def test_member_functions_in_and_out_of_the_class(self):
        source = (
            "class Foo {\n public:\n  int Get() const {\n" + body(2) + "  }\n"
            "  Foo();\n"
            " private:\n  int x_ = 0;\n};\n"
            "int Foo::Set(int v) const noexcept {\n" + body(4) + "}\n")
        self.assertEqual(lengths(source), [("Get", 4), ("Foo::Set", 6)])

    def test_constructor_with_braced_member_initializers(self):
        source = ("Foo::Foo(int x)\n    : a_{x},\n      b_(x),\n      c_{Make(x), {1, 2}} {\n"
                  + body(5) + "}\n"
                  "Foo::~Foo() {\n" + body(1) + "}\n")
        self.assertEqual(lengths(source), [("Foo::Foo", 10), ("Foo::~Foo", 3)])

    def test_lambdas_and_local_classes_belong_to_their_function(self):
        source = ("void Run() {\n"
                  "  auto f = [&](int y) {\n" + body(3) + "  };\n"
                  "  struct Local {\n    void M() {\n" + body(2) + "    }\n  } local;\n"
                  "  if (x) {\n  } else {\n  }\n"
                  "}\n")
        self.assertEqual(lengths(source), [("Run", 16)])

    def test_braces_in_comments_literals_and_directives_are_not_code(self):
        source = ("#define OPEN {\n"
                  "#define MULTI(x) \\\n  do { x } while (0)\n"
                  "int F() {\n"
                  "  const char* s = \"}}}\";  // }\n"
                  "  /* } */ char c = '}'; char d = '\\'';\n"
                  "  const char* r = R\"delim(\n}\n)\" )delim\";\n"
                  "  int n = 1'000'000;\n"
                  "  return n;\n"
                  "}\n"
                  "int G() { return '{'; }\n")
        self.assertEqual(lengths(source), [("F", 9), ("G", 1)])

    def test_gtest_bodies_operators_and_extern_c(self):
        source = ("TEST_F(FooTest, Works) {\n" + body(1) + "}\n"
                  "bool operator==(const A& a, const B& b) {\n" + body(1) + "}\n"
                  "int Foo::operator()(int x) const {\n" + body(1) + "}\n"
                  "extern \"C\" {\nint Plain() {\n" + body(1) + "}\n}\n"
                  "extern \"C\" int LLVMFuzzerTestOneInput(const uint8_t* d, size_t n) {\n"
                  + body(1) + "}\n")
        self.assertEqual(lengths(source), [
            ("TEST_F(FooTest,Works)", 3), ("operator==", 3), ("Foo::operator()", 3),
            ("Plain", 3), ("LLVMFuzzerTestOneInput", 3)])

    def test_attribute_macros_on_classes_and_functions(self):
        source = ("class CAPABILITY(\"mutex\") Mutex {\n public:\n"
                  "  void Lock() ACQUIRE() { mu_.lock(); }\n};\n"
                  "struct S : Base<decltype(f())> {\n  int g() { return 1; }\n};\n"
                  "struct stat* Find(int fd) {\n" + body(1) + "}\n"
                  "auto Make() -> std::vector<int> {\n" + body(1) + "}\n")
        self.assertEqual(lengths(source), [("Lock", 1), ("g", 1), ("Find", 3), ("Make", 3)])

    def test_namespaces_classes_enums_and_initializers_are_not_functions(self):
        source = ("namespace a::b {\nnamespace {\n"
                  "enum class Kind : uint8_t {\n" + "  kA,\n" * 70 + "};\n"
                  "const int kTable[] = {\n" + "  1,\n" * 70 + "};\n"
                  "const std::vector<int> kList{\n" + "  1,\n" * 70 + "};\n"
                  "auto kLambda = [](int x) {\n" + body(70) + "};\n"
                  "struct Big {\n  int a_{0};\n" + "  int x;\n" * 70 + "};\n"
                  "}  // namespace\n}  // namespace a::b\n")
        self.assertEqual(lengths(source), [])


class CommandLineTest(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR"))
        self.root = self.directory.name

    def tearDown(self):
        self.directory.cleanup()

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_main(self, *arguments: str):
        output = io.StringIO()
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            status = function_length.main(list(arguments))
        return status, output.getvalue()

    def test_a_61_line_function_fails_and_a_60_line_one_passes(self):
        self.write("pkg/long.cc", function_of(61, "void TooLong() {"))
        status, output = self.run_main(os.path.join(self.root, "pkg"))
        self.assertEqual(status, 1, output)
        self.assertIn("long.cc:1: function TooLong has 61 lines (max 60)", output)
        # Negative control: one line less is within the budget.
        self.write("pkg/long.cc", function_of(60, "void TooLong() {"))
        status, output = self.run_main(os.path.join(self.root, "pkg"))
        self.assertEqual(status, 0, output)
        self.assertIn("1 file(s) checked, 0 finding(s)", output)

    def test_the_budget_and_the_excludes_are_options(self):
        self.write("pkg/a_test.cc", function_of(30, "TEST(A, B) {"))
        self.write("pkg/b.h", function_of(10, "inline int B() {"))
        status, output = self.run_main("--max-function-lines=20", os.path.join(self.root, "pkg"))
        self.assertEqual(status, 1, output)
        self.assertIn("TEST(A,B) has 30 lines (max 20)", output)
        status, output = self.run_main("--max-function-lines=20", "--exclude=*_test.cc",
                                       os.path.join(self.root, "pkg"))
        self.assertEqual(status, 0, output)
        self.assertIn("1 file(s) checked", output)

    def test_file_caps(self):
        self.write("pkg/agent.cc", "int x;\n" * 100)
        self.write("pkg/other.cc", "int y;\n" * 100)
        folder = os.path.join(self.root, "pkg")
        status, output = self.run_main("--file-cap=*/agent.cc:99", folder)
        self.assertEqual(status, 1, output)
        self.assertIn("agent.cc:1: file has 100 lines (cap 99)", output)
        self.assertNotIn("other.cc", output)
        self.assertEqual(self.run_main("--file-cap=*/agent.cc:100", folder)[0], 0)
        status, output = self.run_main("--max-file-lines=99", folder)
        self.assertEqual(output.count("file has 100 lines"), 2, output)

    def test_a_folder_without_sources_is_an_error_not_a_pass(self):
        os.makedirs(os.path.join(self.root, "empty"))
        status, output = self.run_main(os.path.join(self.root, "empty"))
        self.assertEqual(status, 2, output)
        self.assertIn("no C++ sources", output)
        status, output = self.run_main(os.path.join(self.root, "missing"))
        self.assertEqual(status, 2, output)


if __name__ == "__main__":
    unittest.main()
