/* Kept for files that still include it; the declarations are in phn.h. */
#include "phn.h"
