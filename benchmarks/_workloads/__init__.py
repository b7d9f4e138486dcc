"""The work each benchmark script's contenders do, one module per script.

``append`` and ``gateway`` hold the runners (the ledger side and its raw-driver baselines);
``replay`` and ``views`` the deterministic traffic their large logs are built from. The scripts
themselves keep what they measure, how they compare it and what they print; what two or more
scripts share lives in ``_harness``.
"""
