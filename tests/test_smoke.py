def test_object_tour(db_url, run_cli):
    assert run_cli("add", "queue", "-n", "q1").exit_code == 0
    result = run_cli("ls", "queues")
    assert "q1" in result.output and "Page 1 of 1 of 1 total records" in result.output
