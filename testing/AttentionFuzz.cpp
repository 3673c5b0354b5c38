#include "flexjit/testing/AttentionFuzz.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "flexjit/codegen/Variants.h"

namespace flexjit::testing {

namespace {

constexpr FuzzPath kPaths[] = {FuzzPath::Forward, FuzzPath::Backward, FuzzPath::Decode,
                               FuzzPath::Paged, FuzzPath::Varlen};

using Dims = std::tuple<DType, int, int>; // dtype, dqk, dv

// The (dtype, dqk, dv) a path has kernel rows for on `arch`: the forward's rows (one tile
// per CTA: every forward call can take one), the backward's, the split-KV decode's and the
// rows that read a KV cache.
std::vector<Dims> dims_for(FuzzPath path, Arch arch) {
  std::vector<Dims> dims;
  for (const KernelVariant& v : kernel_variants()) {
    if (!v.is_attention() || v.arch != arch)
      continue;
    bool fits = false;
    switch (path) {
    case FuzzPath::Forward:
    case FuzzPath::Varlen:
      fits = v.kind == TemplateKind::AttentionForward && !v.persistent() && !v.decode();
      break;
    case FuzzPath::Backward:
      fits = v.kind == TemplateKind::AttentionBackward;
      break;
    case FuzzPath::Decode:
      fits = v.kind == TemplateKind::AttentionForward && v.decode();
      break;
    case FuzzPath::Paged:
      fits = v.kind == TemplateKind::AttentionForward && v.kv_cache;
      break;
    }
    const Dims d{v.dtype, v.dqk, v.dv};
    if (fits && std::find(dims.begin(), dims.end(), d) == dims.end())
      dims.push_back(d);
  }
  return dims;
}

int uniform(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

// A length in [1, max]: log-uniform, rarely a multiple of 64 (then nudged), now and then 1.
int random_len(std::mt19937& rng, int max) {
  if (max <= 1 || uniform(rng, 0, 15) == 0)
    return 1;
  const double x = std::exp(std::uniform_real_distribution<double>(0, std::log(max))(rng));
  int len = std::clamp(static_cast<int>(x), 1, max);
  if (len % 64 == 0 && len < max && uniform(rng, 0, 3) != 0)
    ++len;
  return len;
}

[[noreturn]] void bad(std::string_view line, const std::string& what) {
  throw std::runtime_error(fmt::format("fuzz call '{}': {}", line, what));
}

} // namespace

std::string_view to_string(FuzzPath path) {
  switch (path) {
  case FuzzPath::Forward:
    return "forward";
  case FuzzPath::Backward:
    return "backward";
  case FuzzPath::Decode:
    return "decode";
  case FuzzPath::Paged:
    return "paged";
  case FuzzPath::Varlen:
    return "varlen";
  }
  return "?";
}

int64_t FuzzCall::total_q() const {
  return path == FuzzPath::Varlen ? std::accumulate(seq_lens.begin(), seq_lens.end(), int64_t{0})
                                  : int64_t{B} * q_len;
}

int64_t FuzzCall::total_k() const {
  return path == FuzzPath::Varlen ? total_q() : int64_t{B} * kv_len;
}

FuzzCall random_call(std::mt19937& rng, Arch arch, int max_len, int64_t max_elements,
                     uint32_t mod_seeds) {
  std::vector<FuzzPath> paths;
  for (FuzzPath p : kPaths)
    if (!dims_for(p, arch).empty() || p == FuzzPath::Decode) // decode: a forward row anyway
      paths.push_back(p);
  FuzzCall c;
  c.path = paths[static_cast<size_t>(uniform(rng, 0, static_cast<int>(paths.size()) - 1))];
  c.mod_seed =
      mod_seeds > 0 ? static_cast<uint32_t>(rng() % mod_seeds) : static_cast<uint32_t>(rng());
  std::vector<Dims> dims = dims_for(c.path, arch);
  if (dims.empty())
    dims = dims_for(FuzzPath::Forward, arch);
  std::tie(c.dtype, c.dqk, c.dv) =
      dims[static_cast<size_t>(uniform(rng, 0, static_cast<int>(dims.size()) - 1))];

  // GQA: Hkv of 1, 2 or 4 and a group of 1 to 8.
  c.Hkv = 1 << uniform(rng, 0, 2);
  c.Hq = c.Hkv * (1 << uniform(rng, 0, 3));
  c.B = uniform(rng, 1, 3);
  c.bshd = c.path != FuzzPath::Varlen && uniform(rng, 0, 2) == 0;
  c.q_block = 128 << uniform(rng, 0, 1);
  c.kv_block = 128 << uniform(rng, 0, 1);
  c.block_mask = uniform(rng, 0, 7) != 0;
  c.gpu_block_mask = c.block_mask && uniform(rng, 0, 1) == 0;
  const int d = std::max(c.dqk, c.dv);
  switch (c.path) {
  case FuzzPath::Forward:
  case FuzzPath::Backward:
    c.q_len = random_len(rng, max_len);
    c.kv_len = uniform(rng, 0, 2) == 0 ? c.q_len : random_len(rng, max_len);
    break;
  case FuzzPath::Decode:
    c.q_len = uniform(rng, 1, 16);
    c.kv_len = random_len(rng, max_len);
    break;
  case FuzzPath::Paged: {
    c.page_size = 16 << uniform(rng, 0, 4);
    c.q_len = uniform(rng, 0, 1) == 0 ? uniform(rng, 1, 16) : random_len(rng, max_len / 2);
    const int pages = std::max(1, (random_len(rng, max_len) + c.page_size - 1) / c.page_size);
    c.kv_len = pages * c.page_size; // the capacity
    c.bshd = false;
    break;
  }
  case FuzzPath::Varlen: {
    c.B = 1;
    const int n = uniform(rng, 1, 16);
    int budget = max_len;
    for (int i = 0; i < n && budget > 0; ++i) {
      const int len = std::min(random_len(rng, std::max(1, max_len / 4)), budget);
      c.seq_lens.push_back(len);
      budget -= len;
    }
    c.q_len = c.kv_len = static_cast<int>(c.total_q());
    c.causal = uniform(rng, 0, 1) == 0;
    c.gpu_block_mask = true; // varlen builds its document mask on the GPU
    c.block_mask = true;
    break;
  }
  }
  // Keep q, k and v within max_elements: fewer heads, then fewer batches, then shorter.
  auto elements = [&] { return std::max(c.total_q() * c.Hq, c.total_k() * c.Hkv) * d; };
  while (elements() > max_elements && c.Hq > c.Hkv) {
    c.Hq /= 2;
  }
  while (elements() > max_elements && c.B > 1)
    --c.B;
  while (elements() > max_elements && c.path != FuzzPath::Varlen && c.kv_len > 1) {
    c.kv_len = c.path == FuzzPath::Paged
                   ? std::max(c.page_size, c.kv_len / 2 / c.page_size * c.page_size)
                   : std::max(1, c.kv_len / 2);
    c.q_len = std::min(c.q_len, std::max(1, c.q_len / 2));
    if (c.path == FuzzPath::Paged && c.kv_len == c.page_size)
      break;
  }
  if (c.path == FuzzPath::Paged) {
    for (int b = 0; b < c.B; ++b) // lengths 0 .. capacity, often ragged
      c.kv_lens.push_back(uniform(rng, 0, 4) == 0 ? c.kv_len : uniform(rng, 0, c.kv_len));
  }
  return c;
}

std::string format_call(const FuzzCall& c) {
  std::string s = fmt::format(
      "call {} seed {} dtype {} dims {} {} B {} Hq {} Hkv {} q {} kv {} layout {} mask {} blocks "
      "{} {}",
      to_string(c.path), c.mod_seed, to_string(c.dtype), c.dqk, c.dv, c.B, c.Hq, c.Hkv, c.q_len,
      c.kv_len, c.bshd ? "bshd" : "bhsd",
      !c.block_mask ? "none" : (c.gpu_block_mask ? "gpu" : "cpu"), c.q_block, c.kv_block);
  if (c.path == FuzzPath::Paged)
    s += fmt::format(" page {} lens {}", c.page_size, fmt::join(c.kv_lens, " "));
  if (c.path == FuzzPath::Varlen)
    s += fmt::format(" seqs {}{}", fmt::join(c.seq_lens, " "), c.causal ? " causal" : "");
  return s;
}

FuzzCall parse_call(std::string_view line) {
  std::istringstream in{std::string(line)};
  std::vector<std::string> words;
  for (std::string w; in >> w;)
    words.push_back(w);
  size_t i = 0;
  auto word = [&]() -> const std::string& {
    if (i >= words.size())
      bad(line, "ends early");
    return words[i++];
  };
  auto expect = [&](const char* key) {
    const std::string& w = word();
    if (w != key)
      bad(line, fmt::format("expected '{}', found '{}'", key, w));
  };
  auto number = [&]() {
    const std::string& w = word();
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(w, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != w.size() || v < 0 || v > INT32_MAX)
      bad(line, fmt::format("'{}' is not a count", w));
    return static_cast<int>(v);
  };
  auto numbers = [&](std::vector<int>& out) {
    while (i < words.size() && !words[i].empty() &&
           std::isdigit(static_cast<unsigned char>(words[i][0])))
      out.push_back(number());
  };
  FuzzCall c;
  expect("call");
  const std::string& path = word();
  bool known = false;
  for (FuzzPath p : kPaths)
    if (to_string(p) == path) {
      c.path = p;
      known = true;
    }
  if (!known)
    bad(line, fmt::format("unknown path '{}'", path));
  expect("seed");
  {
    const std::string& w = word();
    try {
      c.mod_seed = static_cast<uint32_t>(std::stoul(w));
    } catch (const std::exception&) {
      bad(line, fmt::format("'{}' is not a seed", w));
    }
  }
  expect("dtype");
  const std::string& dtype = word();
  if (dtype == "f16")
    c.dtype = DType::F16;
  else if (dtype == "bf16")
    c.dtype = DType::BF16;
  else
    bad(line, fmt::format("dtype '{}' is not f16 or bf16", dtype));
  expect("dims");
  c.dqk = number();
  c.dv = number();
  expect("B");
  c.B = number();
  expect("Hq");
  c.Hq = number();
  expect("Hkv");
  c.Hkv = number();
  expect("q");
  c.q_len = number();
  expect("kv");
  c.kv_len = number();
  expect("layout");
  const std::string& layout = word();
  if (layout != "bhsd" && layout != "bshd")
    bad(line, fmt::format("layout '{}' is not bhsd or bshd", layout));
  c.bshd = layout == "bshd";
  expect("mask");
  const std::string& mask = word();
  if (mask != "none" && mask != "cpu" && mask != "gpu")
    bad(line, fmt::format("mask '{}' is not none, cpu or gpu", mask));
  c.block_mask = mask != "none";
  c.gpu_block_mask = mask == "gpu";
  expect("blocks");
  c.q_block = number();
  c.kv_block = number();
  if (c.path == FuzzPath::Paged) {
    expect("page");
    c.page_size = number();
    expect("lens");
    numbers(c.kv_lens);
  }
  if (c.path == FuzzPath::Varlen) {
    expect("seqs");
    numbers(c.seq_lens);
    if (i < words.size() && words[i] == "causal") {
      c.causal = true;
      ++i;
    }
  }
  if (i != words.size())
    bad(line, fmt::format("unexpected '{}'", words[i]));
  return c;
}

std::string format_attention_case(const FuzzCall& call, const RandomMod& pair,
                                  const std::string& comment) {
  std::string out;
  std::istringstream lines(comment);
  for (std::string line; std::getline(lines, line);)
    out += "# " + line + "\n";
  return out + format_call(call) + "\n" + format_case(pair.body, pair.bindings, {}, "", pair.score);
}

AttentionFuzzCase parse_attention_case(std::string name, std::string_view text) {
  AttentionFuzzCase c;
  c.name = std::move(name);
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t end = std::min(text.find('\n', pos), text.size());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty())
      continue;
    if (line[0] == '#') {
      c.comment += std::string(line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1)) + "\n";
      continue;
    }
    try {
      c.call = parse_call(line);
    } catch (const std::runtime_error& e) {
      throw std::runtime_error(fmt::format("attention fuzz case {}: {}", c.name, e.what()));
    }
    c.mods = parse_case(c.name, text.substr(std::min(pos, text.size())));
    if (!c.mods.is_pair)
      throw std::runtime_error(
          fmt::format("attention fuzz case {}: its mods are not a 'mod pair'", c.name));
    return c;
  }
  throw std::runtime_error(fmt::format("attention fuzz case {}: no call line", c.name));
}

const std::vector<std::pair<std::string, std::string>>& attention_fuzz_corpus() {
  static const std::vector<std::pair<std::string, std::string>> corpus = {
#include "AttentionFuzzCorpus.inc"
  };
  return corpus;
}

} // namespace flexjit::testing
