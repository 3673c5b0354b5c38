#include "flexjit/testing/FuzzCase.h"

#include <bit>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>

#include "flexjit/compiler/Passes.h"
#include "flexjit/dsl/Mods.h"

namespace flexjit::testing {

namespace {

[[noreturn]] void syntax_error(const std::string& where, const std::string& what) {
  throw std::runtime_error("fuzz case " + where + ": " + what);
}

std::string hex(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i)
    s += fmt::format("{:02x}", p[i]);
  return s;
}

// Elements a view spans (its strides are non-negative), 0 when it is empty.
int64_t span_elements(const TensorView& v) {
  int64_t last = 0;
  for (int d = 0; d < v.rank; ++d) {
    if (v.sizes[d] <= 0)
      return 0;
    last += (v.sizes[d] - 1) * v.strides[d];
  }
  return last + 1;
}

DType parse_dtype(const std::string& s, const std::string& where) {
  for (DType d : {DType::I32, DType::F32, DType::F16, DType::BF16, DType::Bool})
    if (s == to_string(d))
      return d;
  syntax_error(where, "unknown dtype '" + s + "'");
}

float parse_bits(const std::string& s, const std::string& where) {
  if (s.rfind("0x", 0) != 0)
    syntax_error(where, "expected 0x<bits>, got '" + s + "'");
  return std::bit_cast<float>(static_cast<uint32_t>(std::strtoul(s.c_str(), nullptr, 16)));
}

// The expression text of compiler/Printer.cpp, read back into the same DAG:
// nodes are made as printed (no simplification, no promotion).
class ExprParser {
public:
  explicit ExprParser(std::string name) : name_(std::move(name)) {}

  void let(const std::string& var, const std::string& text) { lets_[var] = parse(text); }

  Expr parse(const std::string& text) {
    text_ = text;
    pos_ = 0;
    Expr e = expr();
    skip();
    if (pos_ != text_.size())
      fail("trailing text");
    return e;
  }

private:
  [[noreturn]] void fail(const std::string& what) {
    syntax_error(name_, fmt::format("{} at column {} of '{}'", what, pos_, text_));
  }
  void skip() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }
  bool eat(std::string_view token) {
    skip();
    if (text_.compare(pos_, token.size(), token) != 0)
      return false;
    pos_ += token.size();
    return true;
  }
  void expect(std::string_view token) {
    if (!eat(token))
      fail(fmt::format("expected '{}'", token));
  }
  std::string word() {
    skip();
    size_t start = pos_;
    while (pos_ < text_.size() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) || text_[pos_] == '_'))
      ++pos_;
    if (start == pos_)
      fail("expected a name");
    return text_.substr(start, pos_ - start);
  }
  char peek() {
    skip();
    return pos_ < text_.size() ? text_[pos_] : '\0';
  }

  std::vector<Expr> args() {
    expect("(");
    std::vector<Expr> out{expr()};
    while (eat(","))
      out.push_back(expr());
    expect(")");
    return out;
  }

  Expr number() {
    size_t start = pos_;
    while (pos_ < text_.size() && std::strchr("+-0123456789.eE", text_[pos_]))
      ++pos_;
    std::string s = text_.substr(start, pos_ - start);
    const bool is_float = eat("f") || s.find_first_of(".eE") != std::string::npos;
    if (is_float)
      return make_float(std::strtof(s.c_str(), nullptr));
    return make_int(static_cast<int32_t>(std::strtoll(s.c_str(), nullptr, 10)));
  }

  Expr infix(Expr a) {
    using K = NodeKind;
    struct Op {
      const char* text;
      K kind;
    };
    // Longer spellings first.
    static const Op ops[] = {{"//", K::FloorDiv}, {"<=", K::Le},  {"==", K::Eq}, {"!=", K::Ne},
                             {"&&", K::And},      {"||", K::Or},  {"+", K::Add}, {"-", K::Sub},
                             {"*", K::Mul},       {"/", K::Div},  {"%", K::Mod}, {"<", K::Lt},
                             {"&", K::BitAnd},    {"|", K::BitOr}};
    for (const Op& op : ops) {
      if (!eat(op.text))
        continue;
      Expr b = expr();
      expect(")");
      Type type = a.type();
      switch (op.kind) {
      case K::Div:
        type = Type::Float;
        break;
      case K::FloorDiv:
      case K::Mod:
      case K::BitAnd:
      case K::BitOr:
        type = Type::Int;
        break;
      case K::Lt:
      case K::Le:
      case K::Eq:
      case K::Ne:
      case K::And:
      case K::Or:
        type = Type::Bool;
        break;
      default:
        break;
      }
      return Node::make(op.kind, type, {a, b});
    }
    fail("expected an infix operator");
  }

  Expr call(const std::string& fn) {
    using K = NodeKind;
    static const std::map<std::string, K> unary = {{"abs", K::Abs},
                                                   {"exp", K::Exp},
                                                   {"exp2", K::Exp2},
                                                   {"log", K::Log},
                                                   {"log2", K::Log2},
                                                   {"sqrt", K::Sqrt},
                                                   {"rsqrt", K::Rsqrt},
                                                   {"tanh", K::Tanh},
                                                   {"sin", K::Sin},
                                                   {"cos", K::Cos},
                                                   {"tanh_approx", K::TanhApprox}};
    std::vector<Expr> ops = args();
    auto arity = [&](size_t n) {
      if (ops.size() != n)
        fail(fmt::format("{} takes {} operands", fn, n));
    };
    if (auto it = unary.find(fn); it != unary.end()) {
      arity(1);
      return Node::make(it->second, ops[0].type(), ops);
    }
    if (fn == "min" || fn == "max") {
      arity(2);
      return Node::make(fn == "min" ? K::Min : K::Max, ops[0].type(), ops);
    }
    if (fn == "where") {
      arity(3);
      return Node::make(K::Select, ops[1].type(), ops);
    }
    for (Type t : {Type::Bool, Type::Int, Type::Float})
      if (fn == to_string(t)) {
        arity(1);
        return Node::make(K::Cast, t, ops);
      }
    fail("unknown function '" + fn + "'");
  }

  Expr named(const std::string& name) {
    if (!eat(":")) {
      const std::pair<const char*, Var> vars[] = {{"b", Var::B},
                                                  {"h", Var::H},
                                                  {"q_idx", Var::Q},
                                                  {"kv_idx", Var::KV},
                                                  {"score", Var::Score}};
      for (auto [text, v] : vars)
        if (name == text)
          return make_var(v);
      if (auto it = lets_.find(name); it != lets_.end())
        return it->second;
      fail("unknown name '" + name + "'");
    }
    const std::string kind = word();
    if (kind == "int" || kind == "float") {
      auto [it, fresh] = params_.try_emplace(name);
      if (fresh)
        it->second = kind == "int" ? Expr(param_i32(name)) : Expr(param_f32(name));
      return it->second;
    }
    const DType dtype = parse_dtype(kind, name_);
    expect(":");
    const int rank = std::stoi(word());
    auto [it, fresh] = buffers_.try_emplace(name);
    if (fresh)
      it->second = std::make_shared<Buffer>(name, dtype, rank);
    expect("[");
    std::vector<IntExpr> idx{IntExpr(expr())};
    while (eat(","))
      idx.push_back(IntExpr(expr()));
    expect("]");
    return it->second->load(idx);
  }

  Expr expr() {
    const char c = peek();
    if (c == '(') {
      ++pos_;
      return infix(expr());
    }
    if (eat("!("))
      return Node::make(NodeKind::Not, Type::Bool, {close(expr())});
    if (eat("-(")) {
      Expr a = close(expr());
      return Node::make(NodeKind::Neg, a.type(), {a});
    }
    if (eat("-inf"))
      return make_float(-std::numeric_limits<float>::infinity());
    if (eat("-nan"))
      return make_float(-std::numeric_limits<float>::quiet_NaN());
    if (c == '-' || std::isdigit(static_cast<unsigned char>(c)))
      return number();
    const std::string w = word();
    if (w == "true" || w == "false")
      return make_bool(w == "true");
    if (w == "nan" && eat("(")) { // nan(0x<bits>): a NaN of other bits
      const std::string bits = word();
      expect(")");
      return make_float(std::bit_cast<float>(static_cast<uint32_t>(std::stoul(bits, nullptr, 16))));
    }
    if (w == "nan")
      return make_float(std::numeric_limits<float>::quiet_NaN());
    if (w == "inf")
      return make_float(std::numeric_limits<float>::infinity());
    if (peek() == '(')
      return call(w);
    return named(w);
  }

  Expr close(Expr e) {
    expect(")");
    return e;
  }

  std::string name_;
  std::string text_;
  size_t pos_ = 0;
  std::map<std::string, Expr> lets_;
  std::map<std::string, Expr> params_;
  std::map<std::string, std::shared_ptr<Buffer>> buffers_;
};

} // namespace

std::string format_case(const Expr& body, const Bindings& bindings,
                        const std::vector<Point>& points, const std::string& comment,
                        const Expr& score) {
  std::string out;
  std::istringstream lines(comment);
  for (std::string line; std::getline(lines, line);)
    out += "# " + line + "\n";
  out += fmt::format("mod {}\n", score ? "pair" : body.type() == Type::Bool ? "mask" : "score");
  const ModSignature sig = score ? ModSignature::of({body, score}) : ModSignature::of({body});
  const ResolvedArgs args = resolve(sig, bindings);
  for (size_t i = 0; i < sig.int_params.size(); ++i)
    out += fmt::format("param {}:int = {}\n", sig.int_params[i]->name, args.int_params[i]);
  for (size_t i = 0; i < sig.float_params.size(); ++i)
    out += fmt::format("param {}:float = {:#010x}\n", sig.float_params[i]->name,
                       std::bit_cast<uint32_t>(args.float_params[i]));
  for (size_t i = 0; i < sig.buffers.size(); ++i) {
    const TensorView& v = args.buffers[i];
    out += fmt::format("buffer {}:{}:{} sizes", sig.buffers[i]->name, to_string(v.dtype), v.rank);
    for (int d = 0; d < v.rank; ++d)
      out += fmt::format(" {}", v.sizes[d]);
    out += " strides";
    for (int d = 0; d < v.rank; ++d)
      out += fmt::format(" {}", v.strides[d]);
    const size_t bytes = static_cast<size_t>(span_elements(v) * dtype_size(v.dtype));
    // An empty view that has a pointer keeps one (never read) byte.
    out += !v.data
               ? " data null\n"
               : " data " + (bytes ? hex(static_cast<const uint8_t*>(v.data), bytes) : "00") + "\n";
  }
  for (const Point& p : points)
    out += fmt::format("point {} {} {} {} {:#010x}\n", p.b, p.h, p.q, p.kv,
                       std::bit_cast<uint32_t>(p.score));
  out += "body\n" + print(body) + "\n";
  if (score)
    out += "score\n" + print(score) + "\n";
  return out;
}

FuzzCase parse_case(std::string name, std::string_view text) {
  FuzzCase c;
  c.name = std::move(name);
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  auto where = [&] { return fmt::format("{} line {}", c.name, number); };
  bool have_mod = false;
  for (; std::getline(in, line); ++number) {
    if (line.empty())
      continue;
    if (line[0] == '#') {
      c.comment += line.substr(line.size() > 1 && line[1] == ' ' ? 2 : 1) + "\n";
      continue;
    }
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "mod") {
      std::string kind;
      words >> kind;
      if (kind != "mask" && kind != "score" && kind != "pair")
        syntax_error(where(), "expected 'mod mask', 'mod score' or 'mod pair'");
      c.is_mask = kind != "score";
      c.is_pair = kind == "pair";
      have_mod = true;
    } else if (key == "param") {
      std::string decl, eq, value;
      words >> decl >> eq >> value;
      const size_t colon = decl.find(':');
      if (colon == std::string::npos || eq != "=")
        syntax_error(where(), "expected 'param <name>:<type> = <value>'");
      const std::string type = decl.substr(colon + 1);
      c.mod.bindings.params[decl.substr(0, colon)] =
          type == "int" ? std::stod(value) : static_cast<double>(parse_bits(value, where()));
    } else if (key == "buffer") {
      std::string decl, word;
      words >> decl;
      const size_t c1 = decl.find(':'), c2 = decl.rfind(':');
      if (c1 == std::string::npos || c1 == c2)
        syntax_error(where(), "expected 'buffer <name>:<dtype>:<rank> ...'");
      TensorView v;
      v.dtype = parse_dtype(decl.substr(c1 + 1, c2 - c1 - 1), where());
      v.rank = std::stoi(decl.substr(c2 + 1));
      words >> word;
      for (int d = 0; d < v.rank; ++d)
        words >> v.sizes[d];
      words >> word;
      for (int d = 0; d < v.rank; ++d)
        words >> v.strides[d];
      std::string data;
      words >> word >> data;
      if (word != "data" || !words)
        syntax_error(where(), "expected '... sizes <n>... strides <n>... data <hex>|null'");
      if (data != "null") {
        std::vector<uint8_t> bytes;
        for (size_t i = 0; i + 1 < data.size(); i += 2)
          bytes.push_back(static_cast<uint8_t>(std::stoul(data.substr(i, 2), nullptr, 16)));
        if (bytes.size() < static_cast<size_t>(span_elements(v) * dtype_size(v.dtype)))
          syntax_error(where(), "the data is shorter than the view spans");
        c.mod.storage.push_back(std::move(bytes));
        v.data = c.mod.storage.back().data();
      }
      c.mod.bindings.buffers[decl.substr(0, c1)] = v;
    } else if (key == "point") {
      Point p;
      std::string score;
      words >> p.b >> p.h >> p.q >> p.kv >> score;
      p.score = parse_bits(score, where());
      c.points.push_back(p);
    } else if (key == "body") {
      break;
    } else {
      syntax_error(where(), "unknown item '" + key + "'");
    }
  }
  if (!have_mod)
    syntax_error(c.name, "no 'mod mask|score|pair' line");
  // The body's lines, then (a pair) the score's after a `score` line.
  std::vector<std::string> body, score;
  bool in_score = false;
  while (std::getline(in, line)) {
    if (line.empty())
      continue;
    if (c.is_pair && !in_score && line == "score")
      in_score = true;
    else
      (in_score ? score : body).push_back(line);
  }
  if (body.empty())
    syntax_error(c.name, "no body");
  if (c.is_pair && score.empty())
    syntax_error(c.name, "a pair without a 'score' body");
  ExprParser parser(c.name); // one parser: the pair's two bodies share buffers and params
  auto parse_lines = [&](const std::vector<std::string>& lines) {
    for (size_t i = 0; i + 1 < lines.size(); ++i) {
      const std::string& let = lines[i];
      const size_t eq = let.find(" = ");
      if (let.rfind("let ", 0) != 0 || eq == std::string::npos)
        syntax_error(c.name, "expected 'let <name> = <expr>', got '" + let + "'");
      parser.let(let.substr(4, eq - 4), let.substr(eq + 3));
    }
    return parser.parse(lines.back());
  };
  c.mod.body = parse_lines(body);
  if (c.mod.body.type() != (c.is_mask ? Type::Bool : Type::Float))
    syntax_error(c.name, "the body's type does not match 'mod'");
  if (c.is_pair) {
    c.mod.score = parse_lines(score);
    if (c.mod.score.type() != Type::Float)
      syntax_error(c.name, "the pair's score body is not a float expression");
  }
  return c;
}

const std::vector<std::pair<std::string, std::string>>& fuzz_corpus() {
  static const std::vector<std::pair<std::string, std::string>> corpus = {
#include "FuzzCorpus.inc"
  };
  return corpus;
}

} // namespace flexjit::testing
