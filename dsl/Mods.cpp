#include "flexjit/dsl/Mods.h"

#include "flexjit/support/Error.h"

namespace flexjit {

namespace {

void check_name(const std::string& name, const char* what) {
  if (name.empty())
    fail("a {} needs a non-empty name", what);
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_'))
      fail("{} name '{}' has character '{}'; expected letters, digits and '_'", what, name, c);
}

void check_view(const BufferDecl& decl, const TensorView& data) {
  if (data.dtype != decl.dtype)
    fail("buffer '{}' is declared {} but was bound to {} data; expected {} data", decl.name,
         to_string(decl.dtype), to_string(data.dtype), to_string(decl.dtype));
  if (data.rank != decl.rank)
    fail("buffer '{}' has rank {} but was bound to a rank-{} tensor", decl.name, decl.rank,
         data.rank);
  if (data.data == nullptr && data.numel() > 0)
    fail("buffer '{}' was bound to a null data pointer", decl.name);
  for (int i = 0; i < data.rank; ++i) {
    if (data.sizes[i] < 0 || data.sizes[i] > INT32_MAX)
      fail("buffer '{}' has size {} in dimension {}; expected 0 to {}", decl.name, data.sizes[i], i,
           INT32_MAX);
  }
}

} // namespace

Buffer::Buffer(std::string name, DType dtype, int rank) {
  check_name(name, "buffer");
  if (rank < 1 || rank > kMaxRank)
    fail("buffer '{}' has rank {}; expected 1 to {}", name, rank, kMaxRank);
  decl_ = std::make_shared<BufferDecl>(BufferDecl{std::move(name), dtype, rank, std::nullopt});
}

Buffer::Buffer(std::string name, const TensorView& data)
    : Buffer(std::move(name), data.dtype, data.rank) {
  bind(data);
}

void Buffer::bind(const TensorView& data) {
  check_view(*decl_, data);
  decl_->binding = data;
}

Expr Buffer::load(std::vector<IntExpr> indices) const {
  if (static_cast<int>(indices.size()) != decl_->rank)
    fail("buffer '{}' has rank {} but was indexed with {} indices; expected {}", decl_->name,
         decl_->rank, indices.size(), decl_->rank);
  std::vector<Expr> ops(indices.begin(), indices.end());
  return Node::make(NodeKind::Load, value_type(decl_->dtype), std::move(ops), 0, 0.0f, decl_);
}

namespace {
template <class B> B typed_buffer(std::string name, DType want, const TensorView& data) {
  if (data.dtype != want)
    fail("buffer '{}' is declared {} but was given {} data; expected {} data", name,
         to_string(want), to_string(data.dtype), to_string(want));
  return B(Buffer(std::move(name), data));
}
} // namespace

IntBuffer buffer_i32(std::string name, const TensorView& data) {
  return typed_buffer<IntBuffer>(std::move(name), DType::I32, data);
}
FloatBuffer buffer_f32(std::string name, const TensorView& data) {
  return typed_buffer<FloatBuffer>(std::move(name), DType::F32, data);
}
FloatBuffer buffer_f16(std::string name, const TensorView& data) {
  return typed_buffer<FloatBuffer>(std::move(name), DType::F16, data);
}
FloatBuffer buffer_bf16(std::string name, const TensorView& data) {
  return typed_buffer<FloatBuffer>(std::move(name), DType::BF16, data);
}
BoolBuffer buffer_bool(std::string name, const TensorView& data) {
  return typed_buffer<BoolBuffer>(std::move(name), DType::Bool, data);
}

IntExpr param_i32(std::string name, std::optional<int32_t> default_value) {
  check_name(name, "param");
  auto decl = std::make_shared<const ParamDecl>(
      ParamDecl{std::move(name), Type::Int,
                default_value ? std::optional<double>(*default_value) : std::nullopt});
  return IntExpr(Node::make(NodeKind::Param, Type::Int, {}, 0, 0.0f, nullptr, decl));
}

FloatExpr param_f32(std::string name, std::optional<float> default_value) {
  check_name(name, "param");
  auto decl = std::make_shared<const ParamDecl>(
      ParamDecl{std::move(name), Type::Float,
                default_value ? std::optional<double>(*default_value) : std::nullopt});
  return FloatExpr(Node::make(NodeKind::Param, Type::Float, {}, 0, 0.0f, nullptr, decl));
}

MaskMod::MaskMod(std::string name, BoolExpr body) : name_(std::move(name)), body_(std::move(body)) {
  check_name(name_, "mask_mod");
}
bool MaskMod::is_noop() const {
  return body_.kind() == NodeKind::BoolConst && body_->ival == 1;
}

ScoreMod::ScoreMod() : body_(var_score()) {}
ScoreMod::ScoreMod(std::string name, FloatExpr body)
    : name_(std::move(name)), body_(std::move(body)) {
  check_name(name_, "score_mod");
}
bool ScoreMod::is_noop() const {
  return body_.same_as(var_score());
}

IntExpr var_b() {
  return IntExpr(make_var(Var::B));
}
IntExpr var_h() {
  return IntExpr(make_var(Var::H));
}
IntExpr var_q() {
  return IntExpr(make_var(Var::Q));
}
IntExpr var_kv() {
  return IntExpr(make_var(Var::KV));
}
FloatExpr var_score() {
  return FloatExpr(make_var(Var::Score));
}

namespace {
MaskMod combine(std::initializer_list<MaskMod> masks, bool conj) {
  if (masks.size() == 0)
    return MaskMod(conj ? "and_masks" : "or_masks", BoolExpr(conj));
  std::string name = conj ? "and" : "or";
  BoolExpr body = masks.begin()->body();
  bool first = true;
  for (const MaskMod& m : masks) {
    name += "_" + m.name();
    if (!first)
      body = conj ? (body && m.body()) : (body || m.body());
    first = false;
  }
  return MaskMod(name, body);
}
} // namespace

MaskMod and_masks(std::initializer_list<MaskMod> masks) {
  return combine(masks, true);
}
MaskMod or_masks(std::initializer_list<MaskMod> masks) {
  return combine(masks, false);
}
MaskMod noop_mask() {
  return MaskMod();
}
ScoreMod noop_score() {
  return ScoreMod();
}

} // namespace flexjit
