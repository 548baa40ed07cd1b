"""Every default of the package, in one place: change one here and it changes everywhere.

Framework modules, the engine, the CLI and Ray read these names; nothing restates them::

    >>> from pse_processors import defaults
    >>> defaults.MAX_NEW_TOKENS, defaults.BACKEND
    (256, 'auto')
"""

from __future__ import annotations

# -- generation ---------------------------------------------------------------------------------
#: ``max_new_tokens`` of the engine, the CLI and Ray: transformers' own ``max_length=20`` cuts
#: most structures short.
MAX_NEW_TOKENS = 256

# -- compiling (see :class:`~pse_processors.compiler.options.CompileOptions`) ------------------
BACKEND = "auto"
WHITESPACE = "default"
INDENT = 2
ADDITIONAL_PROPERTIES = "closed"
#: Which orders of an object's declared members are accepted (``json_schema/orders.py``): the order
#: of ``properties`` or ``required``'s names first (models often write that one; nested objects:
#: on llguidance only), extra members before or after the declared ones.
PROPERTY_ORDER = "required"
STRICT = True
MAX_RECURSION_DEPTH = 3
ANY_VALUE_DEPTH = 2
#: outlines-core aborts the whole process when an automaton outgrows memory (a 780k-character
#: regex from a real schema asked for 8 GB at once): larger constraints are refused first.
MAX_REGEX_LENGTH = 700_000
MAX_COMPILE_SECONDS = 10.0
UNKNOWN_FORMATS = "annotation"
#: Each automaton state takes 1 KiB; building 100k states takes about 4 s.
MAX_STATES = 500_000
#: ``backend="auto"`` runs a schema on llguidance when its regex, counted repetitions written out,
#: is longer: such automata take seconds to build (a 240k-character one took 156 s on a loaded
#: 2-core machine, its grammar 0.34 s), while llguidance compiles in milliseconds.
AUTO_MAX_EXPANDED = 50_000
#: llguidance's lexer-state limit for one grammar.
MAX_LEXER_STATES = 250_000

# -- caches -------------------------------------------------------------------------------------
CACHE_ENV = "PSE_PROCESSORS_CACHE_DIR"
#: Compiled matchers kept in memory, by count and by automaton bytes (large automata take ~100 MB).
MEMORY_CACHE_ENTRIES = 64
MEMORY_CACHE_BYTES = 1 << 30
#: Schema -> regex / Lark results kept in memory.
SPEC_CACHE_ENTRIES = 256
#: Host masks cached per matcher (bool and packed), by bytes.
MASK_CACHE_BYTES = 64 << 20
#: ``backend="auto"`` precomputes every state's mask of an automaton up to this many states on its
#: background thread (a trie walk per reachable state, ~1 ms each on a 49k vocabulary); larger
#: automata compute masks on first use.
PRECOMPUTE_MAX_STATES = 20_000
#: The vLLM processor runs a new JSON Schema on llguidance and builds its byte automaton only once
#: llguidance has computed this many of its masks (~0.4 ms each on a 49k vocabulary, about what a
#: typical schema's automaton costs to build; ``Compiler(handoff_after=...)``).
VLLM_HANDOFF_AFTER_MASKS = 256
#: Device masks cached per matcher, per framework (all devices and dtypes together).
DEVICE_MASK_CACHE_BYTES = 256 << 20
#: Prefix -> state entries kept per eager processor, by bytes.
PREFIX_CACHE_BYTES = 64 << 20

# -- in-graph (TF XLA, Flax jit) ----------------------------------------------------------------
MAX_TABLE_BYTES = 256 << 20
MAX_DENSE_MASK_BYTES = 64 << 20
