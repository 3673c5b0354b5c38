/* Uses an installed flexjit from C, through flexjit_c.h: a causal mask from text and its
 * block mask. */
#include <stdio.h>

#include <flexjit/flexjit_c.h>

int main(void) {
  flexjit_mod causal = NULL;
  flexjit_block_mask mask = NULL;
  flexjit_block_mask_info info;
  if (flexjit_mask_mod_from_text("kv_idx <= q_idx", &causal) != FLEXJIT_OK ||
      flexjit_create_block_mask(causal, 1, 1, 1024, 1024, NULL, NULL, &mask) != FLEXJIT_OK ||
      flexjit_block_mask_get_info(mask, &info) != FLEXJIT_OK) {
    fprintf(stderr, "%s\n", flexjit_last_error());
    return 1;
  }
  printf("C API %d: causal block mask of %d x %d tiles, sparsity %.2f%%\n", flexjit_api_version(),
         info.num_q_blocks, info.num_kv_blocks, info.sparsity);
  flexjit_block_mask_destroy(mask);
  flexjit_mod_destroy(causal);
  return info.sparsity == 43.75 ? 0 : 1;
}
