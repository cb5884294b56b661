"""UWV's compute-to-data mode ("enclave"): approved rules run in an isolated runner.

* :mod:`~uwv_server.enclave.approvals`: submitted rules, approvals, rejections, revocations
  and the run log (SQLite); the approval policy comes from the key registry;
* :mod:`~uwv_server.enclave.runner`: starts one confined runner process per run;
* :mod:`~uwv_server.enclave.runner_main`, :mod:`~uwv_server.enclave.sandbox`,
  :mod:`~uwv_server.enclave.job`: the runner process, its confinement and its pipe format;
* :mod:`~uwv_server.enclave.snapshot`: the content digest of a polis snapshot;
* :mod:`~uwv_server.enclave.engine`: the engine version digest;
* :mod:`~uwv_server.enclave.service`: the run service the gRPC adapter calls.

Errors derive from :class:`~uwv_server.enclave.errors.EnclaveError`.
"""
