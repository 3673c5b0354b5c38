// flexjit, the command-line tool (installed with the library, bin/flexjit):
//
//   flexjit mask MASK --q-len N ...            the block mask of a mask_mod: canonical
//                                              text, tile counts, sparsity, torch's picture
//   flexjit compile MASK [SCORE] ... [-o FILE] a kernel's PTX and stats (no GPU needed)
//   flexjit run MASK [SCORE] ...               flex_attention timed on the GPU (skipped
//                                              without one)
//
// Mods come from text (compiler/Parser.h). Exit status: 0 success (a `run` skipped for want
// of a GPU included), 1 a flexjit::Error or a file that cannot be read or written, 2 a usage
// error (kUsage). `flexjit COMMAND --help` documents each command; README.md, "Command line".
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <flexjit/flexjit.h>

#include "flexjit/codegen/Build.h"
#include "flexjit/codegen/PtxasLog.h"
#include "flexjit/codegen/Variants.h"
#include "flexjit/compiler/Passes.h"
#include "flexjit/compiler/PreparedMods.h"
#include "flexjit/dsl/HalfFloat.h"

#ifndef FLEXJIT_VERSION
#error "FLEXJIT_VERSION must be defined by the build"
#endif
#ifndef FLEXJIT_PTXAS
#define FLEXJIT_PTXAS ""
#endif

namespace {

using namespace flexjit;

constexpr int kFailure = 1; // a flexjit::Error, or a file that cannot be read or written
constexpr int kUsage = 2;   // the command line is wrong

// A usage error: the message goes to stderr with a pointer to --help, exit status kUsage.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Anything else that ends the command with kFailure (files), printed as it is.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... A> [[noreturn]] void usage_error(fmt::format_string<A...> f, A&&... args) {
  throw UsageError(fmt::format(f, std::forward<A>(args)...));
}
template <class... A> [[noreturn]] void failure(fmt::format_string<A...> f, A&&... args) {
  throw Failure(fmt::format(f, std::forward<A>(args)...));
}

double ms_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

// ---- The argument parser ----------------------------------------------------------------------

struct OptionSpec {
  std::string_view name;       // "--q-len"
  std::string_view alias = {}; // "-o", or empty
  bool takes_value = true;
};

// One command's arguments: positionals in order, each option's values in order (a flag has
// one empty value per occurrence).
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::vector<std::string>, std::less<>> options;
  bool help = false;

  bool has(std::string_view name) const { return options.find(name) != options.end(); }
  // The last value given (an option given twice keeps the second).
  std::optional<std::string> get(std::string_view name) const {
    const auto it = options.find(name);
    if (it == options.end())
      return std::nullopt;
    return it->second.back();
  }
  std::vector<std::string> all(std::string_view name) const {
    const auto it = options.find(name);
    return it == options.end() ? std::vector<std::string>{} : it->second;
  }
};

// Options as "--name VALUE", "--name=VALUE" or "-o VALUE"; "--" ends the options; -h and
// --help anywhere ask for the command's help. At most `max_positional` positionals.
Args parse_args(std::span<char* const> argv, std::span<const OptionSpec> specs,
                size_t max_positional) {
  Args args;
  bool options_done = false;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string_view arg = argv[i];
    if (options_done || arg == "-" || !arg.starts_with("-")) {
      if (args.positional.size() == max_positional)
        usage_error("unexpected argument '{}' (at most {} text{} expected)", arg, max_positional,
                    max_positional == 1 ? "" : "s");
      args.positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    if (arg == "-h" || arg == "--help") {
      args.help = true;
      continue;
    }
    const size_t eq = arg.starts_with("--") ? arg.find('=') : std::string_view::npos;
    const std::string_view name = arg.substr(0, eq);
    const auto spec = std::find_if(specs.begin(), specs.end(), [&](const OptionSpec& s) {
      return s.name == name || (!s.alias.empty() && s.alias == name);
    });
    if (spec == specs.end())
      usage_error("unknown option '{}'", name);
    std::string value;
    if (!spec->takes_value) {
      if (eq != std::string_view::npos)
        usage_error("option {} takes no value, got '{}'", spec->name, arg);
    } else if (eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argv.size()) {
      value = argv[++i];
    } else {
      usage_error("option {} needs a value", spec->name);
    }
    args.options[std::string(spec->name)].push_back(std::move(value));
  }
  return args;
}

// An integer in [min, max], the whole text.
int64_t parse_integer(std::string_view what, std::string_view text, int64_t min, int64_t max) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v < min || v > max)
    usage_error("{} expects an integer from {} to {}, got '{}'", what, min, max, text);
  return v;
}

int int_option(const Args& args, std::string_view name, int fallback, int min,
               int max = INT32_MAX) {
  const std::optional<std::string> text = args.get(name);
  return text ? static_cast<int>(parse_integer(name, *text, min, max)) : fallback;
}

int required_int_option(const Args& args, std::string_view name, int min, int max = INT32_MAX) {
  if (!args.has(name))
    usage_error("{} is required", name);
  return int_option(args, name, 0, min, max);
}

// One of `choices` (its index), or a usage error listing them.
size_t choice_option(const Args& args, std::string_view name,
                     std::initializer_list<std::string_view> choices, size_t fallback) {
  const std::optional<std::string> text = args.get(name);
  if (!text)
    return fallback;
  size_t i = 0;
  for (std::string_view c : choices) {
    if (c == *text)
      return i;
    ++i;
  }
  std::string list;
  for (std::string_view c : choices)
    list += fmt::format("{}{}", list.empty() ? "" : ", ", c);
  usage_error("{} expects one of {}, got '{}'", name, list, *text);
}

// "NAME=VALUE" of --param, --buffer, --shape.
std::pair<std::string, std::string> name_value(std::string_view option, const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    usage_error("{} expects NAME=VALUE, got '{}'", option, text);
  return {text.substr(0, eq), text.substr(eq + 1)};
}

// ---- Files ------------------------------------------------------------------------------------

std::string read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    failure("cannot read {} '{}': {}", what, path, std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::string& text, std::string_view what) {
  std::ofstream out(path, std::ios::binary);
  if (out)
    out << text;
  if (!out)
    failure("cannot write {} '{}': {}", what, path, std::strerror(errno));
}

// ---- Mods from text ---------------------------------------------------------------------------

// The text of a MASK or SCORE argument: "@FILE" reads FILE.
std::string mod_text(const std::string& arg) {
  return arg.starts_with("@") ? read_file(arg.substr(1), "mod text file") : arg;
}

// A parse Error's "line L, column C" shown under the text: the line and a caret.
std::string error_pointer(const std::string& message, const std::string& text) {
  const size_t at = message.find("line ");
  int line = 0, column = 0;
  if (at == std::string::npos ||
      std::sscanf(message.c_str() + at, "line %d, column %d", &line, &column) != 2 || line < 1 ||
      column < 1)
    return "";
  std::istringstream lines(text);
  std::string row;
  int read = 0;
  while (read < line && std::getline(lines, row))
    ++read;
  if (read < line || static_cast<size_t>(column) > row.size() + 1)
    return "";
  std::string pad;
  for (int i = 0; i + 1 < column; ++i)
    pad += row[static_cast<size_t>(i)] == '\t' ? '\t' : ' ';
  return fmt::format("  {}\n  {}^\n", row, pad);
}

// A mod's Error, with the text's line and a caret under the column it names.
struct ModTextError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

ModTextError mod_text_error(std::string_view kind, const Error& e, const std::string& text) {
  const std::string pointer = error_pointer(e.what(), text);
  return ModTextError(pointer.empty()
                          ? fmt::format("{}\n", e.what())
                          : fmt::format("{}\nin the {} text:\n{}", e.what(), kind, pointer));
}

MaskMod parse_mask_arg(const std::string& arg) {
  const std::string text = mod_text(arg);
  try {
    return parse_mask_mod(text, {}, "mask_mod");
  } catch (const Error& e) {
    throw mod_text_error("mask_mod", e, text);
  }
}

ScoreMod parse_score_arg(const std::string& arg) {
  const std::string text = mod_text(arg);
  try {
    return parse_score_mod(text, {}, "score_mod");
  } catch (const Error& e) {
    throw mod_text_error("score_mod", e, text);
  }
}

// ---- Params and buffers -----------------------------------------------------------------------

// A buffer file's elements as the buffer's dtype: raw little-endian values when the file
// name ends in .bin (bool: one byte each), else text (numbers separated by whitespace or
// commas; '[' and ']' ignored, '#' to the end of a line a comment).
std::vector<uint8_t> read_buffer_file(const std::string& name, const std::string& path,
                                      DType dtype) {
  const std::string data = read_file(path, fmt::format("buffer '{}' file", name));
  const size_t size = static_cast<size_t>(dtype_size(dtype));
  if (path.ends_with(".bin")) {
    if (data.size() % size != 0)
      failure("buffer '{}': '{}' has {} bytes, not a whole number of {} elements ({} bytes "
              "each)",
              name, path, data.size(), to_string(dtype), size);
    return std::vector<uint8_t>(data.begin(), data.end());
  }
  std::vector<uint8_t> out;
  auto append = [&](const void* p) {
    const auto* bytes = static_cast<const uint8_t*>(p);
    out.insert(out.end(), bytes, bytes + size);
  };
  int line = 1;
  for (size_t i = 0; i < data.size();) {
    const char c = data[i];
    if (c == '\n')
      ++line;
    if (c == '#') {
      while (i < data.size() && data[i] != '\n')
        ++i;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) || c == ',' || c == '[' || c == ']') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < data.size() && !std::isspace(static_cast<unsigned char>(data[end])) &&
           data[end] != ',' && data[end] != '[' && data[end] != ']' && data[end] != '#')
      ++end;
    const std::string word = data.substr(i, end - i);
    auto bad = [&](std::string_view expected) {
      failure("buffer '{}': '{}' line {}: '{}' is not {}", name, path, line, word, expected);
    };
    if (dtype == DType::Bool) {
      uint8_t v = 0;
      if (word == "1" || word == "true" || word == "True")
        v = 1;
      else if (!(word == "0" || word == "false" || word == "False"))
        bad("a bool (0, 1, true or false)");
      append(&v);
    } else if (dtype == DType::I32) {
      int32_t v = 0;
      const auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
      if (ec != std::errc() || p != word.data() + word.size())
        bad("an int32");
      append(&v);
    } else {
      char* p = nullptr;
      const float v = std::strtof(word.c_str(), &p);
      if (p != word.c_str() + word.size())
        bad("a number");
      if (dtype == DType::F32) {
        append(&v);
      } else {
        const uint16_t bits = to_half_bits(v, dtype);
        append(&bits);
      }
    }
    i = end;
  }
  return out;
}

// --shape's "2x1024" (or "2,1024").
std::vector<int64_t> parse_shape(const std::string& name, const std::string& text) {
  std::vector<int64_t> sizes;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find_first_of("x,", start);
    if (end == std::string::npos)
      end = text.size();
    sizes.push_back(parse_integer(fmt::format("--shape {}", name),
                                  std::string_view(text).substr(start, end - start), 0, INT32_MAX));
    start = end + 1;
  }
  return sizes;
}

// The values of the mods' params and the host data of their buffers, from --param,
// --buffer and --shape, checked against what the mods read (`sig`).
struct HostBindings {
  std::vector<std::vector<uint8_t>> storage;
  Bindings bindings;
};

std::string signature_text(const ModSignature& sig) {
  std::string out;
  for (const auto& p : sig.int_params)
    out += fmt::format("{}{}:int", out.empty() ? "" : ", ", p->name);
  for (const auto& p : sig.float_params)
    out += fmt::format("{}{}:float", out.empty() ? "" : ", ", p->name);
  for (const auto& b : sig.buffers)
    out +=
        fmt::format("{}{}:{}:{}", out.empty() ? "" : ", ", b->name, to_string(b->dtype), b->rank);
  return out.empty() ? "none" : out;
}

HostBindings host_bindings(const Args& args, const ModSignature& sig) {
  HostBindings host;
  auto param_type = [&](const std::string& name) -> std::optional<Type> {
    for (const auto& p : sig.int_params)
      if (p->name == name)
        return Type::Int;
    for (const auto& p : sig.float_params)
      if (p->name == name)
        return Type::Float;
    return std::nullopt;
  };
  for (const std::string& text : args.all("--param")) {
    const auto [name, value] = name_value("--param", text);
    const std::optional<Type> type = param_type(name);
    if (!type)
      usage_error("--param {}: the mods have no param '{}' (they read: {})", text, name,
                  signature_text(sig));
    if (*type == Type::Int) {
      host.bindings.params[name] = static_cast<double>(
          parse_integer(fmt::format("--param {}", name), value, INT32_MIN, INT32_MAX));
    } else {
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (end != value.c_str() + value.size())
        usage_error("--param {} expects a number, got '{}'", name, value);
      host.bindings.params[name] = v;
    }
  }
  for (const auto& p : sig.int_params)
    if (!host.bindings.params.count(p->name) && !p->default_value)
      usage_error("the mods read int param '{0}'; give its value with --param {0}=VALUE", p->name);
  for (const auto& p : sig.float_params)
    if (!host.bindings.params.count(p->name) && !p->default_value)
      usage_error("the mods read float param '{0}'; give its value with --param {0}=VALUE",
                  p->name);

  std::map<std::string, std::vector<int64_t>> shapes;
  for (const std::string& text : args.all("--shape")) {
    const auto [name, value] = name_value("--shape", text);
    shapes[name] = parse_shape(name, value);
  }
  auto find_buffer = [&](const std::string& name) -> const BufferDecl* {
    for (const auto& b : sig.buffers)
      if (b->name == name)
        return b.get();
    return nullptr;
  };
  for (const auto& [name, sizes] : shapes)
    if (!find_buffer(name))
      usage_error("--shape {}: the mods have no buffer '{}' (they read: {})", name, name,
                  signature_text(sig));
  for (const std::string& text : args.all("--buffer")) {
    const auto [name, path] = name_value("--buffer", text);
    const BufferDecl* decl = find_buffer(name);
    if (!decl)
      usage_error("--buffer {}: the mods have no buffer '{}' (they read: {})", text, name,
                  signature_text(sig));
    std::vector<uint8_t> bytes = read_buffer_file(name, path, decl->dtype);
    const int64_t count = static_cast<int64_t>(bytes.size()) / dtype_size(decl->dtype);
    std::vector<int64_t> sizes{count};
    if (const auto it = shapes.find(name); it != shapes.end())
      sizes = it->second;
    else if (decl->rank != 1)
      usage_error("buffer '{0}' has rank {1}; give its sizes with --shape {0}=D0x...xD{2}", name,
                  decl->rank, decl->rank - 1);
    if (static_cast<int>(sizes.size()) != decl->rank)
      usage_error("--shape {}: {} sizes for a buffer of rank {}", name, sizes.size(), decl->rank);
    int64_t product = 1;
    for (int64_t s : sizes)
      product *= s;
    if (product != count)
      failure("buffer '{}': '{}' has {} elements; its shape needs {}", name, path, count, product);
    host.storage.push_back(std::move(bytes));
    TensorView view;
    view.data = host.storage.back().data();
    view.dtype = decl->dtype;
    view.device = Device::Host;
    view.rank = decl->rank;
    int64_t stride = 1; // row-major
    for (size_t d = static_cast<size_t>(decl->rank); d-- > 0;) {
      view.sizes[d] = sizes[d];
      view.strides[d] = stride;
      stride *= std::max<int64_t>(1, sizes[d]);
    }
    host.bindings.buffers[name] = view;
  }
  for (const auto& b : sig.buffers)
    if (!host.bindings.buffers.count(b->name) && !b->binding)
      usage_error("the mods read buffer '{0}' ({1}, rank {2}); give its data with --buffer "
                  "{0}=FILE",
                  b->name, to_string(b->dtype), b->rank);
  return host;
}

// ---- Help -------------------------------------------------------------------------------------

constexpr std::string_view kMainHelp =
    R"(flexjit {0} -- FlexAttention mask_mods and score_mods from the command line

Usage:
  flexjit mask MASK --q-len N [--kv-len N] [options]   the block mask of a mask_mod
  flexjit compile MASK [SCORE] [options] [-o FILE]     a kernel's PTX and its stats
  flexjit run MASK [SCORE] [options]                   flex_attention timed on the GPU
  flexjit COMMAND --help                               a command's options
  flexjit --help | --version

MASK is a mask_mod and SCORE a score_mod in the text the canonical printer writes
(compiler/Parser.h), e.g.
  '(kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int)'     sliding window
  'doc:i32:1[q_idx] == doc:i32:1[kv_idx]'                     document mask
  '30.0f * tanh_approx(score / 30.0f)'                        soft capping
with C precedence, `let NAME = EXPR` lines and `#` comments. @FILE reads a text from FILE.
Params (NAME:int, NAME:float) get values with --param NAME=VALUE and buffers
(NAME:DTYPE:RANK[...]) data with --buffer NAME=FILE (see `flexjit mask --help`).

Exit status: 0 success (also a `run` skipped for want of a GPU); 1 a flexjit error (a mod
that does not parse or type check, with its line and column; an unsupported kernel; a
file that cannot be read or written); 2 a usage error (unknown command or option, a
missing or bad value, a --param or --buffer the mods lack or need).
)";

constexpr std::string_view kBindingHelp = R"(Params and buffers:
  --param NAME=VALUE   the value of param NAME (NAME:int an int32, NAME:float a number);
                       every param the mods read needs one; repeatable
  --buffer NAME=FILE   the data of buffer NAME: FILE ending in .bin holds raw little-endian
                       values of the buffer's dtype (i32, f32, f16/bf16 bits, bool one byte
                       each); any other FILE is text: numbers separated by whitespace or
                       commas ('[' ']' ignored, '#' starts a comment; bool: 0 1 true false;
                       f16/bf16 rounded to nearest even); row-major; repeatable
  --shape NAME=AxB     the sizes of buffer NAME (required for rank 2 and above; rank 1
                       defaults to the file's element count)
)";

constexpr std::string_view kMaskHelp = R"(Usage: flexjit mask MASK --q-len N [--kv-len N] [options]

Builds the block mask of MASK on the CPU (create_block_mask) and prints the mod's
canonical text, the tile counts, the sparsity (torch's: the percentage of empty tiles)
and torch's picture of the tiles (██ full, ░░ partial, blank empty).

Options:
  --q-len N            query length (required)
  --kv-len N           key/value length (default: --q-len)
  --batch N            B of the mask (default 1)
  --heads N            H of the mask (default 1)
  --block N            q and kv tile size (default 128)
  --q-block N          q tile size (default --block)
  --kv-block N         kv tile size (default --block)
  --grid N             the picture's size: at most N x N cells (default 20; 0: every tile)
  --limit N            the (b, h) pairs pictured (default 4)

{}
Example:
  flexjit mask '(kv_idx <= q_idx) && ((q_idx - kv_idx) <= window:int)' \
      --q-len 8192 --param window=1024
)";

constexpr std::string_view kCompileHelp = R"(Usage: flexjit compile MASK [SCORE] [options] [-o FILE]

Compiles one kernel template with the mods (DSL -> LLVM -> PTX; no GPU needed) and
prints its stats: entry, launch shape, node counts, cache key, compile times and, when
ptxas is found, registers, spills, stack and static shared memory of every entry.

Options:
  --kernel K           forward (default), backward, block-classify, create-mask
  --arch A             sm_90a (default) or sm_80
  --dtype T            bf16 (default) or f16 (attention kernels)
  --head-dim D         head dim of q, k and v (default 128)
  --head-dim-qk D      head dim of q and k (default --head-dim)
  --head-dim-v D       head dim of v (default --head-dim-qk)
  --schedule S         forward on sm_90a: one (a CTA per q tile, default), persistent
                       (a CTA per SM looping over tiles) or split-kv (the decode kernel)
  --min-ctas-per-sm N  the register allocation allows N CTAs per SM (default: the
                       template's launch bounds)
  -o FILE              write the PTX to FILE ('-': stdout; the stats then go to stderr)
  --ptxas PATH         the ptxas to run (default: $CUDA_HOME/bin, PATH, /usr/local/cuda/bin)
  --no-ptxas           do not run ptxas

Example:
  flexjit compile '(kv_idx <= q_idx)' '30.0f * tanh_approx(score / 30.0f)' \
      --arch sm_90a --dtype bf16 --head-dim 128 -o causal_softcap.ptx
)";

constexpr std::string_view kRunHelp = R"(Usage: flexjit run MASK [SCORE] --q-len N [options]

On a GPU: random q, k, v in device memory, the block mask built on the GPU (a mask_mod
of constant true runs without one), then flex_attention timed with CUDA events: the
first call (JIT compile or cache), then the median of --reps timed calls; TFLOP/s count
the non-empty tiles only, 2 * density * B * Hq * q_len * kv_len * (Dqk + Dv) flops
(bench/'s rule; the backward 2.5 times that). Buffers are copied to the device. Without
a GPU it prints "skipped: <reason>" and exits 0.

Options:
  --q-len N            query length (required)
  --kv-len N           key/value length (default: --q-len)
  --batch N            B (default 1)
  --heads N            query heads Hq (default 16)
  --kv-heads N         key/value heads Hkv, dividing Hq (default: --heads)
  --head-dim D         head dim of q, k and v (default 128)
  --head-dim-qk D      head dim of q and k (default --head-dim)
  --head-dim-v D       head dim of v (default --head-dim-qk)
  --dtype T            bf16 (default) or f16
  --block N            block mask tile size, q and kv (default 128)
  --q-block N          q tile size (default --block)
  --kv-block N         kv tile size (default --block)
  --schedule S         auto (default), one, persistent or split-kv (sm_90a forward)
  --reps N             timed calls (default 30)
  --warmup N           untimed calls before them (default 5)
  --backward           also time flex_attention_backward
  --seed N             the inputs' random seed (default 1)

{}
Example:
  flexjit run '(kv_idx <= q_idx)' --batch 4 --heads 16 --q-len 8192 --head-dim 128
)";

// A multi-line text (lets) under a 11-character label: later lines indented to match.
std::string indented(const std::string& text) {
  std::string out;
  for (char c : text)
    out += c == '\n' ? std::string("\n           ") : std::string(1, c);
  return out;
}

// ---- mask -------------------------------------------------------------------------------------

constexpr OptionSpec kBindingOptions[] = {{"--param"}, {"--buffer"}, {"--shape"}};

template <size_t N> std::vector<OptionSpec> with_bindings(const OptionSpec (&own)[N]) {
  std::vector<OptionSpec> specs(std::begin(own), std::end(own));
  specs.insert(specs.end(), std::begin(kBindingOptions), std::end(kBindingOptions));
  return specs;
}

struct Blocks {
  int q_block = kDefaultBlockSize, kv_block = kDefaultBlockSize;
};

Blocks block_options(const Args& args) {
  Blocks b;
  b.q_block = b.kv_block = int_option(args, "--block", kDefaultBlockSize, 1);
  b.q_block = int_option(args, "--q-block", b.q_block, 1);
  b.kv_block = int_option(args, "--kv-block", b.kv_block, 1);
  return b;
}

// The sizes mask and run share: --q-len (required), --kv-len (default: q_len), --batch,
// --heads.
struct Sizes {
  int q_len, kv_len, B, H;
};
Sizes size_options(const Args& args, int default_heads) {
  const int q_len = required_int_option(args, "--q-len", 1);
  return {q_len, int_option(args, "--kv-len", q_len, 1), int_option(args, "--batch", 1, 1),
          int_option(args, "--heads", default_heads, 1)};
}

int command_mask(std::span<char* const> argv) {
  static const OptionSpec own[] = {{"--q-len"},    {"--kv-len"}, {"--batch"},
                                   {"--heads"},    {"--block"},  {"--q-block"},
                                   {"--kv-block"}, {"--grid"},   {"--limit"}};
  const Args args = parse_args(argv, with_bindings(own), 1);
  if (args.help) {
    fmt::print(fmt::runtime(kMaskHelp), kBindingHelp);
    return 0;
  }
  if (args.positional.empty())
    usage_error("a MASK text is required");
  const auto [q_len, kv_len, B, H] = size_options(args, 1);
  const Blocks blocks = block_options(args);
  const int grid = int_option(args, "--grid", 20, 0);
  const int limit = int_option(args, "--limit", 4, 1);

  const MaskMod mask = parse_mask_arg(args.positional[0]);
  const std::shared_ptr<const PreparedMods> prepared = prepare_mods(mask);
  // The params and buffers the text names (optimization may drop some, e.g. x == x).
  const ModSignature signature = ModSignature::of({mask.body()});
  const HostBindings host = host_bindings(args, signature);

  const std::string canonical = print(mask.body());
  const std::string optimized = print(prepared->mask_body);
  fmt::print("mask_mod   {}\n", indented(canonical));
  if (optimized != canonical)
    fmt::print("optimized  {}\n", indented(optimized));
  fmt::print("bindings   {}\n", signature_text(signature));

  BlockMaskOptions options;
  options.q_block = blocks.q_block;
  options.kv_block = blocks.kv_block;
  options.bindings = host.bindings;
  options.device = Device::Host;
  const auto start = std::chrono::steady_clock::now();
  const BlockMask bm = create_block_mask(mask, B, H, q_len, kv_len, options);
  const double build_ms = ms_since(start);

  int64_t counts[3] = {0, 0, 0};
  for (uint8_t s : bm.states())
    ++counts[std::min<uint8_t>(s, 2)];
  const int64_t tiles = counts[0] + counts[1] + counts[2];
  fmt::print("shape      B={} H={} q_len={} kv_len={}; tiles {} x {}: {} x {} per (b, h)\n", B, H,
             q_len, kv_len, bm.q_block, bm.kv_block, bm.num_q_blocks, bm.num_kv_blocks);
  fmt::print("tiles      {} of {} non-empty ({} full, {} partial), {} empty\n",
             counts[1] + counts[2], tiles, counts[2], counts[1], counts[0]);
  fmt::print("sparsity   {:.2f}%\n", bm.sparsity());
  fmt::print("built in   {:.2f} ms (CPU)\n", build_ms);
  fmt::print("{}\n", bm.to_string(grid, limit));
  return 0;
}

// ---- compile ----------------------------------------------------------------------------------

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s)
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The ptxas to run: --ptxas, else $CUDA_HOME/bin, PATH, /usr/local/cuda/bin, and the one
// flexjit was built with; "" when none is executable.
std::string find_ptxas(const Args& args) {
  if (const std::optional<std::string> given = args.get("--ptxas"))
    return *given;
  std::vector<std::string> candidates;
  for (const char* var : {"CUDA_HOME", "CUDA_PATH"})
    if (const char* home = std::getenv(var); home && *home)
      candidates.push_back(std::string(home) + "/bin/ptxas");
  if (const char* path = std::getenv("PATH")) {
    std::string_view dirs = path;
    while (!dirs.empty()) {
      const size_t colon = dirs.find(':');
      const std::string_view dir = dirs.substr(0, colon);
      if (!dir.empty())
        candidates.push_back(std::string(dir) + "/ptxas");
      dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    }
  }
  candidates.push_back("/usr/local/cuda/bin/ptxas");
  candidates.push_back(FLEXJIT_PTXAS);
  for (const std::string& c : candidates)
    if (!c.empty() && access(c.c_str(), X_OK) == 0)
      return c;
  return "";
}

// ptxas -v's report of each function (codegen/PtxasLog.h): registers, spills, stack, static
// shared memory.
struct PtxasReport {
  bool ran = false;
  std::string note; // why it did not run, or its error output
  double ms = 0;
  std::vector<PtxasFunctionReport> functions;
};

PtxasReport run_ptxas(const std::string& ptxas, const std::string& ptx, Arch arch) {
  PtxasReport report;
  char dir_template[] = "/tmp/flexjit_cli_XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (!dir) {
    report.note = fmt::format("no temporary directory: {}", std::strerror(errno));
    return report;
  }
  const std::string ptx_path = std::string(dir) + "/kernel.ptx";
  const std::string cubin_path = std::string(dir) + "/kernel.cubin";
  write_file(ptx_path, ptx, "temporary PTX file");
  const std::string command =
      fmt::format("{} -arch={} -v {} -o {} 2>&1", shell_quote(ptxas), to_string(arch),
                  shell_quote(ptx_path), shell_quote(cubin_path));
  const auto start = std::chrono::steady_clock::now();
  std::string log;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char chunk[4096];
    while (size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
      log.append(chunk, n);
    const int status = pclose(pipe);
    report.ran = status == 0;
    if (!report.ran)
      report.note = fmt::format("{} failed (status {}):\n{}", ptxas, status, log);
  } else {
    report.note = fmt::format("cannot run {}: {}", ptxas, std::strerror(errno));
  }
  report.ms = ms_since(start);
  std::remove(ptx_path.c_str());
  std::remove(cubin_path.c_str());
  rmdir(dir);
  if (!report.ran)
    return report;

  report.functions = parse_ptxas_log(log);
  return report;
}

// The variant table row for the command's kernel, dtype, head dims and schedule.
const KernelVariant& select_row(const KernelSpec& spec, size_t schedule) {
  const KernelVariant& one = find_variant(spec); // Error when there is no such kernel
  if (schedule == 0)
    return one;
  if (spec.kind != TemplateKind::AttentionForward || spec.arch != Arch::SM90a)
    usage_error("--schedule {} needs --kernel forward and --arch sm_90a",
                schedule == 1 ? "persistent" : "split-kv");
  for (const KernelVariant& v : kernel_variants())
    if (v.kind == one.kind && v.arch == one.arch && v.dtype == one.dtype && v.dqk == one.dqk &&
        v.dv == one.dv && (schedule == 1 ? v.persistent() : v.decode()))
      return v;
  failure("flexjit: no {} kernel for {} (--schedule)", schedule == 1 ? "persistent" : "split-kv",
          one.describe());
}

void head_dims(const Args& args, int& dqk, int& dv) {
  const int d = int_option(args, "--head-dim", 128, 1, 4096);
  dqk = int_option(args, "--head-dim-qk", d, 1, 4096);
  dv = int_option(args, "--head-dim-v", args.has("--head-dim-qk") ? dqk : d, 1, 4096);
}

DType dtype_option(const Args& args) {
  return choice_option(args, "--dtype", {"bf16", "f16"}, 0) == 0 ? DType::BF16 : DType::F16;
}

int command_compile(std::span<char* const> argv) {
  static const OptionSpec specs[] = {{"--kernel"},
                                     {"--arch"},
                                     {"--dtype"},
                                     {"--head-dim"},
                                     {"--head-dim-qk"},
                                     {"--head-dim-v"},
                                     {"--schedule"},
                                     {"--min-ctas-per-sm"},
                                     {"--output", "-o"},
                                     {"--ptxas"},
                                     {"--no-ptxas", {}, false}};
  const Args args = parse_args(argv, specs, 2);
  if (args.help) {
    fmt::print("{}", kCompileHelp);
    return 0;
  }
  if (args.positional.empty())
    usage_error("a MASK text is required");
  static constexpr TemplateKind kinds[] = {TemplateKind::AttentionForward,
                                           TemplateKind::AttentionBackward,
                                           TemplateKind::BlockClassify, TemplateKind::CreateMask};
  KernelSpec spec;
  spec.kind = kinds[choice_option(args, "--kernel",
                                  {"forward", "backward", "block-classify", "create-mask"}, 0)];
  spec.arch = choice_option(args, "--arch", {"sm_90a", "sm_80"}, 0) == 0 ? Arch::SM90a : Arch::SM80;
  spec.dtype = dtype_option(args);
  head_dims(args, spec.head_dim, spec.head_dim_v);
  spec.min_ctas_per_sm = int_option(args, "--min-ctas-per-sm", 0, 0, 64);
  const size_t schedule = choice_option(args, "--schedule", {"one", "persistent", "split-kv"}, 0);
  const std::optional<std::string> output = args.get("--output");
  const bool ptx_to_stdout = output && *output == "-";
  std::FILE* stats = ptx_to_stdout ? stderr : stdout;

  spec.mask = parse_mask_arg(args.positional[0]);
  if (args.positional.size() > 1)
    spec.score = parse_score_arg(args.positional[1]);
  const std::shared_ptr<const PreparedMods> prepared = prepare_mods(spec.mask, spec.score);
  const KernelVariant& row = select_row(spec, schedule);
  const CompiledKernel kernel = compile_variant(row, *prepared, spec.min_ctas_per_sm);

  fmt::print(stats, "mask_mod   {}\n", indented(print(prepared->mask_body)));
  fmt::print(stats, "score_mod  {}\n", indented(print(prepared->score_body)));
  fmt::print(stats, "bindings   {}\n", signature_text(prepared->signature));
  fmt::print(stats, "kernel     {}{}\n", row.describe(),
             row.persistent() ? " (persistent grid)"
             : row.decode()   ? " (split-KV decode)"
                              : "");
  fmt::print(stats, "entry      {}\n", kernel.entry);
  fmt::print(stats, "launch     {} threads, {} bytes dynamic shared memory\n", row.main.threads,
             row.main.smem_bytes);
  for (int i = 0; i < row.num_companions; ++i)
    fmt::print(stats, "companion  {} ({}: {} threads, {} bytes dynamic shared memory)\n",
               row.companions[i].shape.entry,
               row.companions[i].role == CompanionRole::Prologue ? "before" : "after",
               row.companions[i].shape.threads, row.companions[i].shape.smem_bytes);
  fmt::print(stats, "mod nodes  {} (mask {}, score {}; limit {})\n", prepared->nodes,
             prepared->mask_nodes, prepared->score_nodes, row.max_mod_nodes);
  fmt::print(stats, "key        {}\n", kernel.key);
  const CompileTimes& t = kernel.times;
  fmt::print(stats,
             "compile    {:.1f} ms (lower {:.1f}, link {:.1f}, optimize {:.1f}, codegen {:.1f})\n",
             t.total_ms, t.lower_ms, t.link_ms, t.optimize_ms, t.codegen_ms);
  fmt::print(stats, "PTX        {} bytes\n", kernel.ptx.size());
  for (const std::string& w : kernel.warnings)
    fmt::print(stats, "warning    {}\n", w);

  if (args.has("--no-ptxas")) {
    fmt::print(stats, "ptxas      not run (--no-ptxas)\n");
  } else if (const std::string ptxas = find_ptxas(args); ptxas.empty()) {
    fmt::print(stats, "ptxas      not found (set CUDA_HOME, PATH or --ptxas): no register "
                      "counts\n");
  } else {
    const PtxasReport report = run_ptxas(ptxas, kernel.ptx, spec.arch);
    if (!report.ran)
      failure("{}", report.note);
    fmt::print(stats, "ptxas      {} -arch={}: {:.0f} ms\n", ptxas, to_string(spec.arch),
               report.ms);
    for (const PtxasFunctionReport& f : report.functions)
      fmt::print(stats,
                 "  {}: {} registers, {} bytes spill stores, {} bytes spill loads, {} bytes "
                 "stack, {} bytes static shared memory\n",
                 f.name, f.registers, f.spill_store_bytes, f.spill_load_bytes, f.stack_bytes,
                 f.smem_bytes);
  }

  if (!output) {
    fmt::print(stats, "(PTX not written: -o FILE writes it, -o - to stdout)\n");
  } else if (ptx_to_stdout) {
    std::fwrite(kernel.ptx.data(), 1, kernel.ptx.size(), stdout);
  } else {
    write_file(*output, kernel.ptx, "PTX file");
    fmt::print(stats, "wrote      {}\n", *output);
  }
  return 0;
}

// ---- run --------------------------------------------------------------------------------------

// `count` elements of `dtype` (f16/bf16) uniform in [-1, 1), from a splitmix64 stream.
DeviceBuffer random_device_tensor(size_t count, DType dtype, uint64_t seed) {
  std::vector<uint16_t> bits(count);
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull;
  for (uint16_t& b : bits) {
    state += 0x9e3779b97f4a7c15ull;
    uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f); // [0, 1)
    b = to_half_bits(2.0f * u - 1.0f, dtype);
  }
  DeviceBuffer buffer(count * 2);
  buffer.upload(bits.data(), count * 2);
  return buffer;
}

// Elements of a downloaded f16/bf16 tensor that are inf or NaN.
size_t count_nonfinite(const DeviceBuffer& buffer, DType dtype) {
  std::vector<uint16_t> bits(buffer.bytes() / 2);
  buffer.download(bits.data(), bits.size() * 2);
  const uint16_t exponent = dtype == DType::BF16 ? 0x7f80u : 0x7c00u;
  return static_cast<size_t>(std::count_if(bits.begin(), bits.end(),
                                           [&](uint16_t b) { return (b & exponent) == exponent; }));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The kernels the kernel cache built or loaded from disk since `from` (not memory hits).
void print_builds(size_t from) {
  const std::vector<KernelBuildTimes> log = kernel_build_log();
  for (size_t i = from; i < log.size(); ++i) {
    const KernelBuildTimes& k = log[i];
    if (k.from_disk)
      fmt::print("  kernel {}: from the disk cache, loaded in {:.1f} ms\n", k.entry, k.load_ms);
    else
      fmt::print("  kernel {}: DSL -> PTX {:.1f} ms, PTX -> cubin {:.1f} ms, load {:.1f} ms\n",
                 k.entry, k.dsl_to_ptx_ms, k.ptx_to_cubin_ms, k.load_ms);
  }
}

int command_run(std::span<char* const> argv) {
  static const OptionSpec own[] = {
      {"--q-len"},    {"--kv-len"},   {"--batch"},       {"--heads"},
      {"--kv-heads"}, {"--head-dim"}, {"--head-dim-qk"}, {"--head-dim-v"},
      {"--dtype"},    {"--block"},    {"--q-block"},     {"--kv-block"},
      {"--schedule"}, {"--reps"},     {"--warmup"},      {"--backward", {}, false},
      {"--seed"}};
  const Args args = parse_args(argv, with_bindings(own), 2);
  if (args.help) {
    fmt::print(fmt::runtime(kRunHelp), kBindingHelp);
    return 0;
  }
  if (args.positional.empty())
    usage_error("a MASK text is required");
  const auto [q_len, kv_len, B, Hq] = size_options(args, 16);
  const int Hkv = int_option(args, "--kv-heads", Hq, 1);
  if (Hq % Hkv != 0)
    usage_error("--kv-heads {} does not divide --heads {}", Hkv, Hq);
  int Dqk = 0, Dv = 0;
  head_dims(args, Dqk, Dv);
  const DType dtype = dtype_option(args);
  const Blocks blocks = block_options(args);
  static constexpr FlexAttentionOptions::Schedule schedules[] = {
      FlexAttentionOptions::Schedule::Auto, FlexAttentionOptions::Schedule::OneTilePerCta,
      FlexAttentionOptions::Schedule::Persistent, FlexAttentionOptions::Schedule::SplitKv};
  const FlexAttentionOptions::Schedule schedule =
      schedules[choice_option(args, "--schedule", {"auto", "one", "persistent", "split-kv"}, 0)];
  const int reps = int_option(args, "--reps", 30, 1, 100000);
  const int warmup = int_option(args, "--warmup", 5, 0, 100000);
  const uint64_t seed = static_cast<uint64_t>(int_option(args, "--seed", 1, 0));
  const bool backward = args.has("--backward");

  const MaskMod mask = parse_mask_arg(args.positional[0]);
  const ScoreMod score =
      args.positional.size() > 1 ? parse_score_arg(args.positional[1]) : ScoreMod();
  const std::shared_ptr<const PreparedMods> prepared = prepare_mods(mask, score);
  const HostBindings host = host_bindings(args, ModSignature::of({mask.body(), score.body()}));
  fmt::print("mask_mod   {}\n", indented(print(prepared->mask_body)));
  fmt::print("score_mod  {}\n", indented(print(prepared->score_body)));
  fmt::print("problem    {} B={} Hq={} Hkv={} q_len={} kv_len={} Dqk={} Dv={}\n", to_string(dtype),
             B, Hq, Hkv, q_len, kv_len, Dqk, Dv);
  if (!cuda_available()) {
    fmt::print("skipped: {}\n", cuda_unavailable_reason());
    return 0;
  }

  const size_t q_count = static_cast<size_t>(B) * Hq * q_len;
  const size_t kv_count = static_cast<size_t>(B) * Hkv * kv_len;
  const DeviceBuffer q = random_device_tensor(q_count * Dqk, dtype, seed);
  const DeviceBuffer k = random_device_tensor(kv_count * Dqk, dtype, seed + 1);
  const DeviceBuffer v = random_device_tensor(kv_count * Dv, dtype, seed + 2);
  DeviceBuffer out(q_count * Dv * 2);
  out.fill(0xff); // NaN: every element must be written
  DeviceBuffer lse(q_count * 4);
  const TensorView qv = q.view(dtype, {B, Hq, q_len, Dqk});
  const TensorView kv = k.view(dtype, {B, Hkv, kv_len, Dqk});
  const TensorView vv = v.view(dtype, {B, Hkv, kv_len, Dv});
  const TensorView ov = out.view(dtype, {B, Hq, q_len, Dv});
  const TensorView lv = lse.view(DType::F32, {B, Hq, q_len});
  const DeviceBindings device = to_device({mask.body(), score.body()}, host.bindings);

  // The block mask on the GPU, broadcast over b and h unless the mask reads them.
  BlockMask bm;
  double density = 1.0;
  const bool attends_all =
      prepared->mask_body.kind() == NodeKind::BoolConst && prepared->mask_body->ival == 1;
  if (!attends_all) {
    BlockMaskOptions o;
    o.q_block = blocks.q_block;
    o.kv_block = blocks.kv_block;
    o.bindings = device.bindings;
    o.device = Device::Cuda;
    o.host_arrays = false;
    const int mask_b = prepared->mask_dependence.b ? B : 1;
    const int mask_h = prepared->mask_dependence.h ? Hq : 1;
    const size_t log_size = kernel_build_log().size();
    auto start = std::chrono::steady_clock::now();
    bm = create_block_mask(mask, mask_b, mask_h, q_len, kv_len, o);
    Stream{}.synchronize();
    const double first_ms = ms_since(start);
    start = std::chrono::steady_clock::now();
    bm = create_block_mask(mask, mask_b, mask_h, q_len, kv_len, o);
    Stream{}.synchronize();
    const double again_ms = ms_since(start);
    density = 1.0 - bm.sparsity() / 100.0;
    fmt::print("block mask B={} H={}, tiles {} x {}, sparsity {:.2f}%: built on the GPU in "
               "{:.2f} ms (first build {:.1f} ms)\n",
               mask_b, mask_h, bm.q_block, bm.kv_block, bm.sparsity(), again_ms, first_ms);
    print_builds(log_size);
  } else {
    fmt::print("block mask none (the mask_mod is true everywhere: every tile computed)\n");
  }

  FlexAttentionOptions o;
  o.score_mod = score;
  o.block_mask = attends_all ? nullptr : &bm;
  o.bindings = device.bindings;
  o.lse = &lv;
  o.schedule = schedule;
  const double flop = 2.0 * density * B * Hq * static_cast<double>(q_len) * kv_len * (Dqk + Dv);

  auto time_calls = [&](std::string_view what, const std::function<void()>& call, double flops) {
    const size_t log_size = kernel_build_log().size();
    const auto start = std::chrono::steady_clock::now();
    call();
    Stream{}.synchronize();
    const double first_ms = ms_since(start);
    for (int i = 0; i < warmup; ++i)
      call();
    Stream{}.synchronize();
    std::vector<double> times;
    for (int i = 0; i < reps; ++i)
      times.push_back(time_on_stream(Stream{}, call, 1));
    check_device_errors();
    const double ms = median(times);
    fmt::print("{}: {:.4f} ms median of {} (min {:.4f}), {:.1f} TFLOP/s on non-empty tiles "
               "(density {:.2f}%); first call {:.1f} ms\n",
               what, ms, reps, *std::min_element(times.begin(), times.end()), flops / ms / 1e9,
               100.0 * density, first_ms);
    print_builds(log_size);
  };
  time_calls(
      "forward", [&] { flex_attention(qv, kv, vv, ov, o); }, flop);
  fmt::print("  output: {} non-finite values\n", count_nonfinite(out, dtype));

  if (backward) {
    const DeviceBuffer d_out = random_device_tensor(q_count * Dv, dtype, seed + 3);
    DeviceBuffer dq(q_count * Dqk * 2), dk(kv_count * Dqk * 2), dv(kv_count * Dv * 2);
    const TensorView dov = d_out.view(dtype, {B, Hq, q_len, Dv});
    const TensorView dqv = dq.view(dtype, {B, Hq, q_len, Dqk});
    const TensorView dkv = dk.view(dtype, {B, Hkv, kv_len, Dqk});
    const TensorView dvv = dv.view(dtype, {B, Hkv, kv_len, Dv});
    flex_attention(qv, kv, vv, ov, o); // out and lse of these inputs
    time_calls(
        "backward", [&] { flex_attention_backward(qv, kv, vv, ov, dov, dqv, dkv, dvv, o); },
        2.5 * flop);
    fmt::print("  gradients: {} non-finite values\n", count_nonfinite(dq, dtype) +
                                                          count_nonfinite(dk, dtype) +
                                                          count_nonfinite(dv, dtype));
  }
  return 0;
}

// ---- main -------------------------------------------------------------------------------------

int dispatch(int argc, char** argv, std::string& command) {
  const std::span<char* const> all(argv, static_cast<size_t>(argc));
  if (argc < 2) {
    fmt::print(stderr, fmt::runtime(kMainHelp), FLEXJIT_VERSION);
    return kUsage;
  }
  const std::string_view first = argv[1];
  if (first == "--help" || first == "-h" || first == "help") {
    fmt::print(fmt::runtime(kMainHelp), FLEXJIT_VERSION);
    return 0;
  }
  if (first == "--version") {
    fmt::print("flexjit {}\n", FLEXJIT_VERSION);
    return 0;
  }
  command = first;
  const std::span<char* const> rest = all.subspan(2);
  if (first == "mask")
    return command_mask(rest);
  if (first == "compile")
    return command_compile(rest);
  if (first == "run")
    return command_run(rest);
  command.clear();
  if (first.starts_with("-"))
    usage_error("unknown option '{}'", first);
  usage_error("unknown command '{}' (expected mask, compile or run)", first);
}

} // namespace

int main(int argc, char** argv) {
  std::string command;
  const auto prefix = [&] {
    return command.empty() ? std::string("flexjit") : "flexjit " + command;
  };
  try {
    return dispatch(argc, argv, command);
  } catch (const UsageError& e) {
    fmt::print(stderr, "{}: {}\nSee '{} --help'.\n", prefix(), e.what(), prefix());
    return kUsage;
  } catch (const ModTextError& e) {
    fmt::print(stderr, "{}", e.what());
    return kFailure;
  } catch (const std::exception& e) {
    // flexjit::Error ("flexjit: ..."), Failure, and anything else the library threw.
    fmt::print(stderr, "{}\n", e.what());
    return kFailure;
  }
}
