#include "bench/bench_util.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

namespace understudy::bench {

double Percentile(std::vector<double> values, double fraction) {
  if (values.empty()) return 0;
  size_t index = static_cast<size_t>(fraction * static_cast<double>(values.size() - 1) + 0.5);
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(index), values.end());
  return values[index];
}

void DoNotOptimize(const void* pointer) { asm volatile("" : : "g"(pointer) : "memory"); }

double MemcpyBaselineSeconds(std::span<const std::byte> source, const std::vector<size_t>& chunk_sizes,
                             int repetitions) {
  size_t total = 0;
  for (size_t size : chunk_sizes) total += size;
  std::vector<std::byte> destination(total);
  // Touch the destination once so page faults are not part of the baseline.
  std::memset(destination.data(), 1, destination.size());
  std::vector<double> times;
  for (int repetition = 0; repetition < repetitions; ++repetition) {
    Clock::time_point start = Clock::now();
    size_t offset = 0;
    for (size_t size : chunk_sizes) {
      std::memcpy(destination.data() + offset, source.data() + offset, size);
      DoNotOptimize(destination.data() + offset);
      offset += size;
    }
    times.push_back(SecondsSince(start));
  }
  return Median(std::move(times));
}

std::vector<uint32_t> ParseUintList(const std::string& list) {
  std::vector<uint32_t> values;
  for (size_t at = 0; at <= list.size();) {
    size_t comma = list.find(',', at);
    std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    char* end = nullptr;
    unsigned long value = std::strtoul(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value == 0 || value > UINT32_MAX) {
      std::fprintf(stderr, "not a list of positive numbers: '%s'\n", list.c_str());
      std::exit(2);
    }
    values.push_back(static_cast<uint32_t>(value));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return values;
}

std::string Format(const char* format, ...) {
  va_list arguments;
  va_start(arguments, format);
  char buffer[512];
  int length = std::vsnprintf(buffer, sizeof(buffer), format, arguments);
  va_end(arguments);
  if (length < 0) return "";
  return std::string(buffer, std::min<size_t>(static_cast<size_t>(length), sizeof(buffer) - 1));
}

std::string Table::Markdown() const {
  std::vector<size_t> widths(header_.size(), 3);
  for (size_t column = 0; column < header_.size(); ++column) widths[column] = std::max(widths[column], header_[column].size());
  for (const auto& row : rows_) {
    for (size_t column = 0; column < row.size() && column < widths.size(); ++column) {
      widths[column] = std::max(widths[column], row[column].size());
    }
  }
  auto line = [&](const std::vector<std::string>& cells, bool right_align) {
    std::string text = "|";
    for (size_t column = 0; column < widths.size(); ++column) {
      std::string cell = column < cells.size() ? cells[column] : "";
      std::string pad(widths[column] - std::min(widths[column], cell.size()), ' ');
      text += " " + (right_align && column >= text_columns_ ? pad + cell : cell + pad) + " |";
    }
    return text + "\n";
  };
  std::string text = line(header_, false) + "|";
  for (size_t column = 0; column < widths.size(); ++column) {
    text += column < text_columns_ ? std::string(widths[column] + 2, '-') + "|"
                                   : std::string(widths[column] + 1, '-') + ":|";
  }
  text += "\n";
  for (const auto& row : rows_) text += line(row, true);
  return text;
}

std::string UtcNow() {
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char text[64];
  std::strftime(text, sizeof(text), "%Y-%m-%d %H:%M UTC", &utc);
  return text;
}

double LoadAverage1() {
  double load = -1;
  if (FILE* file = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(file, "%lf", &load) != 1) load = -1;
    std::fclose(file);
  }
  return load;
}

std::string MachineDescription(std::string_view qemu_version) {
  std::string version(qemu_version);
  if (version.empty()) {
    version = "unknown";
    if (FILE* pipe = ::popen("qemu-system-x86_64 --version 2>/dev/null", "r")) {
      char line[256] = {};
      if (std::fgets(line, sizeof(line), pipe) != nullptr) {
        // "QEMU emulator version 7.2.22 (Debian ...)"
        std::string text = line;
        size_t at = text.find("version ");
        if (at != std::string::npos) {
          size_t end = text.find_first_of(" \n", at + 8);
          version = text.substr(at + 8, end == std::string::npos ? std::string::npos : end - at - 8);
        }
      }
      ::pclose(pipe);
    }
  }
  return Format("%u cores, paravirtual KVM, QEMU %s", std::thread::hardware_concurrency(), version.c_str());
}

std::string BuildMode() {
#ifdef __OPTIMIZE__
  return "-c opt";
#else
  return "fastbuild (-O0: not representative)";
#endif
}

Status UpdateResultsSection(std::string_view name, std::string_view body, std::string* written_path) {
  const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
  if (workspace == nullptr || *workspace == '\0') {
    return Status::FailedPrecondition("BUILD_WORKSPACE_DIRECTORY is not set (run the benchmark with `bazel run`)");
  }
  std::string path = std::string(workspace) + "/bench/RESULTS.md";
  std::string contents;
  {
    std::ifstream file(path);
    if (file) {
      std::stringstream buffer;
      buffer << file.rdbuf();
      contents = buffer.str();
    }
  }
  const std::string begin = "<!-- " + std::string(name) + ":begin -->";
  const std::string end = "<!-- " + std::string(name) + ":end -->";
  const std::string generated = begin + "\n" + std::string(body) + (body.ends_with("\n") ? "" : "\n") + end;
  size_t begin_at = contents.find(begin);
  size_t end_at = begin_at == std::string::npos ? std::string::npos : contents.find(end, begin_at);
  if (begin_at != std::string::npos && end_at != std::string::npos) {
    contents.replace(begin_at, end_at + end.size() - begin_at, generated);
  } else {
    if (contents.empty()) contents = "# Benchmark results\n";
    if (!contents.ends_with("\n")) contents += "\n";
    contents += "\n## " + std::string(name) + "\n\n" + generated + "\n";
  }
  std::ofstream file(path, std::ios::trunc);
  file << contents;
  file.close();
  if (!file) return Status::IOError("cannot write " + path);
  if (written_path != nullptr) *written_path = path;
  return Status::Ok();
}

void PublishResults(std::string_view name, const std::string& body, bool write) {
  std::printf("\n%s", body.c_str());
  if (!write) return;
  std::string path;
  Status written = UpdateResultsSection(name, body, &path);
  if (written.ok()) {
    std::printf("\nwrote %s\n", path.c_str());
  } else {
    std::printf("\nresults not written: %s\n", written.ToString().c_str());
  }
}

}  // namespace understudy::bench
