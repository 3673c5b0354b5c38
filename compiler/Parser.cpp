// The text parser (compiler/Parser.h): a lexer, then recursive descent with
// precedence climbing, building nodes with Node::make after checking their types
// here (so every type error is located and no node invariant can fire).
#include "flexjit/compiler/Parser.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <optional>

#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

enum class Tok : uint8_t { End, Name, Number, Hex, Punct };

struct Token {
  Tok kind = Tok::End;
  std::string_view text;
  int line = 1, column = 1;
  bool space_before = false;   // whitespace or a comment right before it
  bool newline_before = false; // a newline between it and the previous token
};

bool is_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

[[noreturn]] void error_at(int line, int column, const std::string& what) {
  fail("line {}, column {}: {}", line, column, what);
}
[[noreturn]] void error_at(const Token& t, const std::string& what) {
  error_at(t.line, t.column, what);
}

// How a message shows a token.
std::string describe(const Token& t) {
  if (t.kind == Tok::End)
    return "the end of the text";
  return fmt::format("'{}'", t.text);
}

// Whether the name characters from `i` are followed by ':'.
bool name_before_colon(std::string_view text, size_t i) {
  while (i < text.size() && is_name_char(text[i]))
    ++i;
  return i < text.size() && text[i] == ':';
}

std::vector<Token> lex(std::string_view text) {
  std::vector<Token> out;
  size_t i = 0, line_start = 0;
  int line = 1;
  bool space = false, newline = false;
  auto column = [&](size_t at) { return static_cast<int>(at - line_start) + 1; };
  while (true) {
    // Whitespace and comments.
    while (i < text.size()) {
      const char c = text[i];
      if (c == '\n') {
        ++line;
        line_start = ++i;
        space = newline = true;
      } else if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
        ++i;
        space = true;
      } else if (c == '#') {
        while (i < text.size() && text[i] != '\n')
          ++i;
        space = true;
      } else {
        break;
      }
    }
    Token t;
    t.line = line;
    t.column = column(i);
    t.space_before = space;
    t.newline_before = newline;
    space = newline = false;
    if (i == text.size()) {
      out.push_back(t);
      return out;
    }
    const size_t start = i;
    const char c = text[i];
    if (is_name_start(c)) {
      while (i < text.size() && is_name_char(text[i]))
        ++i;
      t.kind = Tok::Name;
    } else if (is_digit(c) && name_before_colon(text, i)) {
      // A buffer or param name may start with a digit (names are letters, digits and
      // '_'): "2d:f32:2[...]".
      while (i < text.size() && is_name_char(text[i]))
        ++i;
      t.kind = Tok::Name;
    } else if (is_digit(c)) {
      if (c == '0' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X')) {
        i += 2;
        while (i < text.size() && std::isxdigit(static_cast<unsigned char>(text[i])))
          ++i;
        t.kind = Tok::Hex;
        if (i == start + 2)
          error_at(t, fmt::format("malformed number '{}'; expected hex digits after 0x",
                                  text.substr(start, i - start)));
      } else {
        while (i < text.size() && is_digit(text[i]))
          ++i;
        if (i < text.size() && text[i] == '.') {
          ++i;
          while (i < text.size() && is_digit(text[i]))
            ++i;
        }
        if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
          size_t j = i + 1;
          if (j < text.size() && (text[j] == '+' || text[j] == '-'))
            ++j;
          if (j < text.size() && is_digit(text[j])) {
            i = j;
            while (i < text.size() && is_digit(text[i]))
              ++i;
          }
        }
        if (i < text.size() && text[i] == 'f')
          ++i;
        t.kind = Tok::Number;
      }
      if (i < text.size() && (is_name_char(text[i]) || text[i] == '.')) {
        while (i < text.size() && (is_name_char(text[i]) || text[i] == '.'))
          ++i;
        error_at(t, fmt::format("malformed number '{}'", text.substr(start, i - start)));
      }
    } else {
      static const char* const two[] = {"//", "<=", ">=", "==", "!=", "&&", "||"};
      t.kind = Tok::Punct;
      for (const char* p : two)
        if (text.substr(i, 2) == p) {
          i += 2;
          break;
        }
      if (i == start) {
        if (std::string_view("()[],;=:+-*/%<>&|!").find(c) == std::string_view::npos) {
          const auto u = static_cast<unsigned char>(c);
          error_at(t, u >= 0x20 && u < 0x7f ? fmt::format("unexpected character '{}'", c)
                                            : fmt::format("unexpected byte 0x{:02x}", u));
        }
        ++i;
      }
    }
    t.text = text.substr(start, i - start);
    out.push_back(t);
  }
}

struct BinaryOp {
  std::string_view text;
  int precedence; // higher binds tighter
  NodeKind kind;
  bool swap; // a > b is b < a, as in the DSL
};

constexpr BinaryOp kBinaryOps[] = {
    {"||", 1, NodeKind::Or, false},       {"&&", 2, NodeKind::And, false},
    {"|", 3, NodeKind::BitOr, false},     {"&", 4, NodeKind::BitAnd, false},
    {"==", 5, NodeKind::Eq, false},       {"!=", 5, NodeKind::Ne, false},
    {"<", 6, NodeKind::Lt, false},        {"<=", 6, NodeKind::Le, false},
    {">", 6, NodeKind::Lt, true},         {">=", 6, NodeKind::Le, true},
    {"+", 7, NodeKind::Add, false},       {"-", 7, NodeKind::Sub, false},
    {"*", 8, NodeKind::Mul, false},       {"/", 8, NodeKind::Div, false},
    {"//", 8, NodeKind::FloorDiv, false}, {"%", 8, NodeKind::Mod, false},
};

struct Function {
  std::string_view name;
  int arity;
  NodeKind kind; // Cast for the casts; clamp is min(max(x, lo), hi)
  Type cast_to = Type::Int;
};

constexpr Function kFunctions[] = {
    {"min", 2, NodeKind::Min},
    {"max", 2, NodeKind::Max},
    {"clamp", 3, NodeKind::Min},
    {"where", 3, NodeKind::Select},
    {"abs", 1, NodeKind::Abs},
    {"exp", 1, NodeKind::Exp},
    {"exp2", 1, NodeKind::Exp2},
    {"log", 1, NodeKind::Log},
    {"log2", 1, NodeKind::Log2},
    {"sqrt", 1, NodeKind::Sqrt},
    {"rsqrt", 1, NodeKind::Rsqrt},
    {"tanh", 1, NodeKind::Tanh},
    {"tanh_approx", 1, NodeKind::TanhApprox},
    {"sin", 1, NodeKind::Sin},
    {"cos", 1, NodeKind::Cos},
    {"int", 1, NodeKind::Cast, Type::Int},
    {"float", 1, NodeKind::Cast, Type::Float},
    {"bool", 1, NodeKind::Cast, Type::Bool},
};

const Function* find_function(std::string_view name) {
  for (const Function& f : kFunctions)
    if (f.name == name)
      return &f;
  return nullptr;
}

std::optional<DType> find_dtype(std::string_view name) {
  for (DType d : {DType::I32, DType::F32, DType::F16, DType::BF16, DType::Bool})
    if (to_string(d) == name)
      return d;
  return std::nullopt;
}

constexpr std::pair<std::string_view, Var> kVars[] = {
    {"b", Var::B}, {"h", Var::H}, {"q_idx", Var::Q}, {"kv_idx", Var::KV}, {"score", Var::Score}};

bool is_reserved(std::string_view name) {
  for (auto [text, v] : kVars)
    if (name == text)
      return true;
  for (std::string_view k : {"let", "true", "false", "inf", "nan"})
    if (name == k)
      return true;
  return find_function(name) != nullptr;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string_view type_name(Type t) {
  return to_string(t);
}

bool is_number(Type t) {
  return t == Type::Int || t == Type::Float;
}

bool is_zero_const(const Expr& e) {
  return (e.kind() == NodeKind::IntConst && e->ival == 0) ||
         (e.kind() == NodeKind::FloatConst && e->fval == 0.0f);
}

Expr to_float_node(const Expr& e) {
  return e.type() == Type::Float ? e : Node::make(NodeKind::Cast, Type::Float, {e});
}

class Parser {
public:
  Parser(std::string_view text, const TextBindings& names, bool allow_score)
      : tokens_(lex(text)), allow_score_(allow_score) {
    for (const Buffer& b : names.buffers) {
      auto [it, fresh] = buffers_.try_emplace(b.name(), b.decl());
      if (!fresh && it->second != b.decl())
        fail("TextBindings has two different {}s named '{}'; expected one per name", "buffer",
             b.name());
    }
    for (const Expr& p : names.params) {
      if (!p || p.kind() != NodeKind::Param)
        fail("TextBindings::params holds {}, not a param; expected param_i32(...) or "
             "param_f32(...)",
             p ? fmt::format("a {} node", to_string(p.kind())) : std::string("an empty Expr"));
      auto [it, fresh] = params_.try_emplace(p->param->name, p);
      if (!fresh && !it->second.same_as(p))
        fail("TextBindings has two different {}s named '{}'; expected one per name", "param",
             p->param->name);
    }
  }

  // The whole text: lets, then the body. `root_at` is where the body starts.
  Expr parse(Token& root_at) {
    if (peek().kind == Tok::End)
      error_at(peek(), "the text is empty; expected an expression");
    while (is_name("let") && !is_punct(":", 1) && !is_punct("[", 1)) // not a buffer "let"
      parse_let();
    if (peek().kind == Tok::End)
      error_at(peek(), "expected the mod's expression after the lets, found the end of the text");
    root_at = peek();
    Expr e = expression(0);
    if (peek().kind != Tok::End)
      error_at(peek(), fmt::format("unexpected {} after the expression; expected an operator "
                                   "or the end of the text",
                                   describe(peek())));
    return e;
  }

private:
  // Nesting guard: a recursion level per nested operation or group.
  struct Deeper {
    explicit Deeper(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxParseDepth)
        error_at(p_.peek(), fmt::format("the expression nests deeper than {} levels; expected "
                                        "shallower nesting (use let bindings)",
                                        kMaxParseDepth));
    }
    ~Deeper() { --p_.depth_; }
    Deeper(const Deeper&) = delete;
    Deeper& operator=(const Deeper&) = delete;
    Parser& p_;
  };

  const Token& peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  Token next() {
    Token t = peek();
    if (pos_ + 1 < tokens_.size())
      ++pos_;
    return t;
  }
  bool is_punct(std::string_view p, size_t ahead = 0) const {
    return peek(ahead).kind == Tok::Punct && peek(ahead).text == p;
  }
  bool is_name(std::string_view n) const { return peek().kind == Tok::Name && peek().text == n; }
  Token expect(std::string_view p, std::string_view what) {
    if (!is_punct(p))
      error_at(peek(), fmt::format("expected {}, found {}", what, describe(peek())));
    return next();
  }

  void parse_let() {
    next(); // let
    const Token name = peek();
    if (name.kind != Tok::Name)
      error_at(name, fmt::format("expected a name after 'let', found {}", describe(name)));
    next();
    if (is_reserved(name.text))
      error_at(name, fmt::format("'{}' is a reserved name; a let needs another name", name.text));
    if (auto it = lets_.find(std::string(name.text)); it != lets_.end())
      error_at(name, fmt::format("'{}' is already defined (line {}); a let name is defined once",
                                 name.text, it->second.second));
    expect("=", "'=' after the let's name");
    in_let_ = true;
    Expr value = expression(0);
    in_let_ = false;
    if (is_punct(";"))
      next();
    else if (peek().kind == Tok::End)
      error_at(peek(), "expected the mod's expression after the lets, found the end of the text");
    else if (!peek().newline_before)
      error_at(peek(), fmt::format("expected a newline or ';' after the let's expression, found {}",
                                   describe(peek())));
    lets_.emplace(std::string(name.text), std::pair{value, name.line});
  }

  const BinaryOp* binary_op() const {
    const Token& t = peek();
    if (t.kind != Tok::Punct)
      return nullptr;
    // A let's expression ends at a newline outside brackets.
    if (in_let_ && groups_ == 0 && t.newline_before)
      return nullptr;
    for (const BinaryOp& op : kBinaryOps)
      if (op.text == t.text)
        return &op;
    return nullptr;
  }

  // Precedence climbing; the recursion for a right operand is bounded by the
  // number of precedence levels, so only groups and unary operators nest deeper.
  Expr expression(int min_precedence) {
    Expr lhs = unary();
    while (const BinaryOp* op = binary_op()) {
      if (op->precedence < min_precedence)
        break;
      const Token at = next();
      Expr rhs = expression(op->precedence + 1);
      lhs = op->swap ? combine(at, *op, rhs, lhs) : combine(at, *op, lhs, rhs);
    }
    return lhs;
  }

  [[noreturn]] void operands_error(const Token& at, std::string_view needs, const Expr& a,
                                   const Expr& b) {
    error_at(at, fmt::format("'{}' needs {}, got {} and {}", at.text, needs, type_name(a.type()),
                             type_name(b.type())));
  }

  // Promotes an int to float beside a float, as match_types does.
  std::pair<Expr, Expr> promote(const Token& at, std::string_view needs, Expr a, Expr b) {
    if (a.type() == b.type())
      return {a, b};
    if (!is_number(a.type()) || !is_number(b.type()))
      operands_error(at, needs, a, b);
    return {to_float_node(a), to_float_node(b)};
  }

  Expr combine(const Token& at, const BinaryOp& op, Expr a, Expr b) {
    using K = NodeKind;
    switch (op.kind) {
    case K::Add:
    case K::Sub:
    case K::Mul:
    case K::Min:
    case K::Max: {
      if (!is_number(a.type()) || !is_number(b.type()))
        operands_error(at, "numbers", a, b);
      auto [x, y] = promote(at, "numbers", a, b);
      return Node::make(op.kind, x.type(), {x, y});
    }
    case K::Div: {
      if (!is_number(a.type()) || !is_number(b.type()))
        operands_error(at, "numbers", a, b);
      if (a.type() == Type::Int && b.type() == Type::Int)
        error_at(at, "'/' is float division and needs a float operand, got int and int (use '//' "
                     "for int floor division, or float(...))");
      auto [x, y] = promote(at, "numbers", a, b);
      check_divisor(at, y);
      return Node::make(K::Div, Type::Float, {x, y});
    }
    case K::FloorDiv:
    case K::Mod:
    case K::BitAnd:
    case K::BitOr:
      if (a.type() != Type::Int || b.type() != Type::Int)
        operands_error(at, "int operands", a, b);
      if (op.kind == K::FloorDiv || op.kind == K::Mod)
        check_divisor(at, b);
      return Node::make(op.kind, Type::Int, {a, b});
    case K::Lt:
    case K::Le: {
      if (!is_number(a.type()) || !is_number(b.type()))
        operands_error(at, "numbers", a, b);
      auto [x, y] = promote(at, "numbers", a, b);
      return Node::make(op.kind, Type::Bool, {x, y});
    }
    case K::Eq:
    case K::Ne: {
      auto [x, y] = promote(at, "two values of one type (or two numbers)", a, b);
      return Node::make(op.kind, Type::Bool, {x, y});
    }
    case K::And:
    case K::Or:
      if (a.type() != Type::Bool || b.type() != Type::Bool)
        operands_error(at, "bool operands", a, b);
      return Node::make(op.kind, Type::Bool, {a, b});
    case K::IntConst:
    case K::FloatConst:
    case K::BoolConst:
    case K::Var:
    case K::Param:
    case K::Load:
    case K::Not:
    case K::Neg:
    case K::Abs:
    case K::Exp:
    case K::Exp2:
    case K::Log:
    case K::Log2:
    case K::Sqrt:
    case K::Rsqrt:
    case K::Tanh:
    case K::TanhApprox:
    case K::Sin:
    case K::Cos:
    case K::Select:
    case K::Cast:
      break;
    }
    FLEXJIT_ASSERT(false, "{} is not a binary operator", to_string(op.kind));
    return {};
  }

  void check_divisor(const Token& at, const Expr& divisor) {
    if (is_zero_const(divisor))
      error_at(at,
               fmt::format("'{}' divides by a constant zero; expected a nonzero divisor", at.text));
  }

  Expr unary() {
    const Token t = peek();
    if (is_punct("!")) {
      Deeper guard(*this);
      next();
      Expr a = unary();
      if (a.type() != Type::Bool)
        error_at(t, fmt::format("'!' needs a bool operand, got {}", type_name(a.type())));
      return Node::make(NodeKind::Not, Type::Bool, {a});
    }
    if (is_punct("-")) {
      const Token& after = peek(1);
      // A '-' written against a number, inf or nan is part of the literal.
      if (!after.space_before &&
          (after.kind == Tok::Number ||
           (after.kind == Tok::Name && (after.text == "inf" || after.text == "nan") &&
            !is_punct(":", 2)))) {
        next();
        return literal(next(), true);
      }
      Deeper guard(*this);
      next();
      Expr a = unary();
      if (!is_number(a.type()))
        error_at(t, fmt::format("'-' needs a number, got {}", type_name(a.type())));
      return Node::make(NodeKind::Neg, a.type(), {a});
    }
    return primary();
  }

  Expr literal(const Token& t, bool negative) {
    const std::string sign = negative ? "-" : "";
    if (t.kind == Tok::Name) { // inf, nan
      const float inf = std::numeric_limits<float>::infinity();
      if (t.text == "inf")
        return make_float(negative ? -inf : inf);
      if (negative || !is_punct("("))
        return make_float(std::bit_cast<float>(negative ? 0xffc00000u : 0x7fc00000u));
      next(); // nan(0x<bits>)
      const Token bits = peek();
      if (bits.kind != Tok::Hex)
        error_at(bits,
                 fmt::format("expected a NaN's bits (nan(0x7fc00001)), found {}", describe(bits)));
      next();
      expect(")", "')' after the NaN's bits");
      uint64_t v = 0;
      const std::string_view hex = bits.text.substr(2);
      auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), v, 16);
      const float f = std::bit_cast<float>(static_cast<uint32_t>(v));
      if (ec != std::errc() || end != hex.data() + hex.size() || v > 0xffffffffu || !std::isnan(f))
        error_at(bits, fmt::format("{} is not the bits of a float NaN; expected 0x7f800001 to "
                                   "0x7fffffff or 0xff800001 to 0xffffffff",
                                   bits.text));
      return make_float(f);
    }
    if (t.kind == Tok::Hex)
      error_at(t, fmt::format("unexpected hex number {}{}; hex is only for nan(0x<bits>)", sign,
                              t.text));
    std::string text = sign + std::string(t.text);
    const bool is_float = text.find_first_of(".eEf") != std::string::npos;
    if (text.back() == 'f')
      text.pop_back();
    const char* first = text.data();
    const char* last = text.data() + text.size();
    if (is_float) {
      float v = 0.0f;
      auto [end, ec] = std::from_chars(first, last, v);
      if (ec == std::errc::result_out_of_range)
        error_at(t, fmt::format("float literal {}{} is outside the float range (use inf, or 0.0f)",
                                sign, t.text));
      if (ec != std::errc() || end != last)
        error_at(t, fmt::format("malformed number '{}{}'", sign, t.text));
      return make_float(v);
    }
    int64_t v = 0;
    auto [end, ec] = std::from_chars(first, last, v);
    if (ec != std::errc() || end != last || v < std::numeric_limits<int32_t>::min() ||
        v > std::numeric_limits<int32_t>::max())
      error_at(t, fmt::format("integer literal {}{} is outside the int32 range", sign, t.text));
    return make_int(static_cast<int32_t>(v));
  }

  Expr primary() {
    const Token t = peek();
    if (t.kind == Tok::Number || t.kind == Tok::Hex) {
      next();
      return literal(t, false);
    }
    if (is_punct("(")) {
      Deeper guard(*this);
      next();
      ++groups_;
      Expr e = expression(0);
      expect(")", "')' to close the '(' at " + location(t));
      --groups_;
      return e;
    }
    if (t.kind != Tok::Name)
      error_at(t, fmt::format("expected an expression, found {}", describe(t)));
    next();
    const std::string name(t.text);
    if (is_punct(":")) // first: a declared name may be any name ("nan:float", "b:int")
      return declared(t);
    if (name == "true" || name == "false")
      return make_bool(name == "true");
    if (name == "inf" || name == "nan")
      return literal(t, false);
    if (const Function* fn = find_function(name)) {
      if (!is_punct("("))
        error_at(peek(), fmt::format("expected '(' after the function '{}', found {}", name,
                                     describe(peek())));
      return call(t, *fn);
    }
    for (auto [text, v] : kVars)
      if (name == text) {
        if (v == Var::Score && !allow_score_)
          error_at(t, "'score' is not available in a mask_mod; a mask_mod reads b, h, q_idx, "
                      "kv_idx (use a score_mod to change scores)");
        return make_var(v);
      }
    if (auto it = lets_.find(name); it != lets_.end())
      return it->second.first;
    if (is_punct("(")) {
      error_at(t, fmt::format("unknown function '{}' (expected min, max, clamp, where, abs, exp, "
                              "exp2, log, log2, sqrt, rsqrt, tanh, tanh_approx, sin, cos, int, "
                              "float or bool){}",
                              name, suggestion(name)));
    }
    if (auto it = buffers_.find(name); it != buffers_.end()) {
      if (!is_punct("["))
        error_at(peek(), fmt::format("expected '[' after the buffer '{}', found {}", name,
                                     describe(peek())));
      return load(t, it->second);
    }
    if (auto it = params_.find(name); it != params_.end())
      return it->second;
    error_at(t, fmt::format("unknown name '{}' (expected b, h, q_idx, kv_idx{}, a let name, or "
                            "a buffer or param: name:int, name:float, name:dtype:rank[...], or "
                            "one given in TextBindings){}",
                            name, allow_score_ ? ", score" : "", suggestion(name)));
  }

  static std::string location(const Token& t) {
    return fmt::format("line {}, column {}", t.line, t.column);
  }

  std::string suggestion(const std::string& name) const {
    std::vector<std::string> known;
    for (auto [text, v] : kVars)
      if (v != Var::Score || allow_score_)
        known.emplace_back(text);
    for (const Function& f : kFunctions)
      known.emplace_back(f.name);
    for (const auto& [n, e] : lets_)
      known.push_back(n);
    for (const auto& [n, e] : params_)
      known.push_back(n);
    for (const auto& [n, e] : buffers_)
      known.push_back(n);
    std::string best;
    size_t best_distance = 3;
    for (const std::string& k : known) {
      const size_t d = edit_distance(name, k);
      if (d < best_distance && d < k.size()) {
        best = k;
        best_distance = d;
      }
    }
    return best.empty() ? "" : fmt::format("; did you mean '{}'?", best);
  }

  // name:int, name:float, name:dtype:rank[...]
  Expr declared(const Token& name_token) {
    const std::string name(name_token.text);
    next(); // ':'
    const Token kind = peek();
    if (kind.kind == Tok::Name && (kind.text == "int" || kind.text == "float")) {
      next();
      const Type type = kind.text == "int" ? Type::Int : Type::Float;
      auto it = params_.find(name);
      if (it == params_.end())
        it =
            params_.emplace(name, type == Type::Int ? Expr(param_i32(name)) : Expr(param_f32(name)))
                .first;
      if (it->second.type() != type)
        error_at(name_token, fmt::format("param '{}' is read as {} here but is declared {}; "
                                         "expected one type per name",
                                         name, type_name(type), type_name(it->second.type())));
      return it->second;
    }
    const std::optional<DType> dtype =
        kind.kind == Tok::Name ? find_dtype(kind.text) : std::nullopt;
    if (!dtype)
      error_at(kind, fmt::format("expected a param type (int, float) or a buffer dtype (i32, "
                                 "f32, f16, bf16, bool) after '{}:', found {}",
                                 name, describe(kind)));
    next();
    expect(":", fmt::format("':' and the rank after '{}:{}'", name, kind.text));
    const Token rank_token = peek();
    int rank = 0;
    if (rank_token.kind != Tok::Number || rank_token.text.size() != 1 || rank_token.text[0] < '1' ||
        rank_token.text[0] > '4')
      error_at(rank_token, fmt::format("expected the buffer's rank, 1 to {}, found {}", kMaxRank,
                                       describe(rank_token)));
    rank = rank_token.text[0] - '0';
    next();
    auto it = buffers_.find(name);
    if (it == buffers_.end())
      it = buffers_.emplace(name, Buffer(name, *dtype, rank).decl()).first;
    const BufferDecl& decl = *it->second;
    if (decl.dtype != *dtype || decl.rank != rank)
      error_at(name_token,
               fmt::format("buffer '{}' is read as {}:{} here but is declared {}:{}; "
                           "expected one dtype and rank per name",
                           name, to_string(*dtype), rank, to_string(decl.dtype), decl.rank));
    if (!is_punct("["))
      error_at(peek(), fmt::format("expected '[' and indices after the buffer '{}:{}:{}', found {}",
                                   name, kind.text, rank, describe(peek())));
    return load(name_token, it->second);
  }

  // Comma-separated expressions up to `close`; at the open token.
  std::vector<std::pair<Token, Expr>> arguments(const Token& open, std::string_view close) {
    Deeper guard(*this);
    next(); // the opening bracket
    ++groups_;
    std::vector<std::pair<Token, Expr>> out;
    if (!is_punct(close)) {
      while (true) {
        const Token at = peek();
        out.emplace_back(at, expression(0));
        if (!is_punct(","))
          break;
        next();
      }
    }
    expect(close,
           fmt::format("',' or '{}' to close the '{}' at {}", close, open.text, location(open)));
    --groups_;
    return out;
  }

  Expr load(const Token& name_token, const std::shared_ptr<BufferDecl>& decl) {
    const Token open = peek();
    auto args = arguments(open, "]");
    if (static_cast<int>(args.size()) != decl->rank)
      error_at(open, fmt::format("buffer '{}' has rank {} but is indexed with {} indices; "
                                 "expected {}",
                                 decl->name, decl->rank, args.size(), decl->rank));
    std::vector<Expr> ops;
    for (auto& [at, e] : args) {
      if (e.type() != Type::Int)
        error_at(at, fmt::format("buffer '{}' is indexed with a {}; expected an int index",
                                 name_token.text, type_name(e.type())));
      ops.push_back(e);
    }
    return Node::make(NodeKind::Load, value_type(decl->dtype), std::move(ops), 0, 0.0f, decl);
  }

  Expr call(const Token& name, const Function& fn) {
    const Token open = peek();
    auto args = arguments(open, ")");
    if (static_cast<int>(args.size()) != fn.arity)
      error_at(name, fmt::format("{}() takes {} argument{}, got {}", fn.name, fn.arity,
                                 fn.arity == 1 ? "" : "s", args.size()));
    using K = NodeKind;
    auto number_arg = [&](size_t i) {
      const Expr& e = args[i].second;
      if (!is_number(e.type()))
        error_at(args[i].first,
                 fmt::format("{}() needs a number, got {}", fn.name, type_name(e.type())));
      return e;
    };
    if (fn.kind == K::Cast)
      return Node::make(K::Cast, fn.cast_to, {args[0].second});
    if (fn.name == "clamp") {
      Expr x = number_arg(0), lo = number_arg(1), hi = number_arg(2);
      if (x.type() == Type::Float || lo.type() == Type::Float || hi.type() == Type::Float) {
        x = to_float_node(x);
        lo = to_float_node(lo);
        hi = to_float_node(hi);
      }
      Expr low = Node::make(K::Max, x.type(), {x, lo});
      return Node::make(K::Min, x.type(), {low, hi});
    }
    if (fn.kind == K::Min || fn.kind == K::Max) {
      Expr a = number_arg(0), b = number_arg(1);
      if (a.type() != b.type()) {
        a = to_float_node(a);
        b = to_float_node(b);
      }
      return Node::make(fn.kind, a.type(), {a, b});
    }
    if (fn.kind == K::Select) {
      const Expr& c = args[0].second;
      if (c.type() != Type::Bool)
        error_at(args[0].first,
                 fmt::format("where() needs a bool condition, got {}", type_name(c.type())));
      Expr a = args[1].second, b = args[2].second;
      if (a.type() != b.type()) {
        if (!is_number(a.type()) || !is_number(b.type()))
          error_at(args[2].first,
                   fmt::format("where() needs two branches of one type (or two numbers), got {} "
                               "and {}",
                               type_name(a.type()), type_name(b.type())));
        a = to_float_node(a);
        b = to_float_node(b);
      }
      return Node::make(K::Select, a.type(), {c, a, b});
    }
    if (fn.kind == K::Abs) {
      Expr a = number_arg(0);
      return Node::make(K::Abs, a.type(), {a});
    }
    // exp, log, ...: float functions; an int argument is promoted.
    return Node::make(fn.kind, Type::Float, {to_float_node(number_arg(0))});
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  bool allow_score_;
  bool in_let_ = false;
  int groups_ = 0; // open parentheses / brackets
  int depth_ = 0;
  std::map<std::string, std::pair<Expr, int>> lets_; // value, line
  std::map<std::string, std::shared_ptr<BufferDecl>> buffers_;
  std::map<std::string, Expr> params_;
};

Expr parse_body(std::string_view text, const TextBindings& names, bool allow_score,
                Token& root_at) {
  Parser parser(text, names, allow_score);
  return parser.parse(root_at);
}

} // namespace

Expr parse_expr(std::string_view text, const TextBindings& names, bool allow_score) {
  Token root_at;
  return parse_body(text, names, allow_score, root_at);
}

MaskMod parse_mask_mod(std::string_view text, const TextBindings& names, std::string mod_name) {
  Token root_at;
  Expr body = parse_body(text, names, false, root_at);
  if (body.type() != Type::Bool)
    error_at(root_at, fmt::format("a mask_mod is a bool expression, this one is {}",
                                  type_name(body.type())));
  return MaskMod(std::move(mod_name), BoolExpr(body));
}

ScoreMod parse_score_mod(std::string_view text, const TextBindings& names, std::string mod_name) {
  Token root_at;
  Expr body = parse_body(text, names, true, root_at);
  if (body.type() == Type::Bool)
    error_at(root_at, "a score_mod is a float expression, this one is bool");
  return ScoreMod(std::move(mod_name), FloatExpr(to_float_node(body)));
}

} // namespace flexjit
