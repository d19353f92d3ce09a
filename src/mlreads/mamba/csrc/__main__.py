"""`python -m mlreads.mamba.csrc` (`make ext`): build the fused selective-scan extension now, or find it in the cache,
so that the first run or test that uses it does not pay for the build. Exit status 1 where it cannot be built (the
reason is the warning `load()` prints) or is switched off by MLREADS_NO_EXT."""

import sys
import time

from mlreads.mamba import csrc


def main() -> int:
    if csrc.disabled():
        print("fused selective-scan kernel: switched off (MLREADS_NO_EXT is set)")
        return 1
    start = time.perf_counter()
    ok = csrc.available()
    where = csrc.cache_dir() / f"selective_scan-{csrc.build_key()}"
    print(f"fused selective-scan kernel: {'ready in ' + str(where) if ok else 'unavailable'} "
          f"({time.perf_counter() - start:.0f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
