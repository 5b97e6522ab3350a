"""A run's own record besides what training logs: MLflow's system metrics, sampled in a thread while it runs."""

import time

from ganbench.tracking import make_client, mlflow_run


def test_a_run_samples_mlflows_system_metrics_at_the_chosen_interval_and_none_when_off(mlflow_uri):
    client = make_client(mlflow_uri)
    with mlflow_run(client, "system", "sampled", {}, system_metrics_every=0.25) as sampled:
        time.sleep(2.0)
    with mlflow_run(client, "system", "off", {}, system_metrics_every=0) as off:
        time.sleep(0.5)

    metrics = client.get_run(sampled.run_id).data.metrics
    assert {"system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"} <= set(metrics)
    cpu = client.get_metric_history(sampled.run_id, "system/cpu_utilization_percentage")
    assert len(cpu) >= 3 and all(0 <= m.value <= 100 for m in cpu)  # psutil's share of all cores
    assert not [k for k in client.get_run(off.run_id).data.metrics if k.startswith("system/")]
