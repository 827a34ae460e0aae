# frozen_string_literal: true

require_relative "helper"

# The Ruby SDK against a live server: every operation, models, errors,
# pagination, timeouts, threads and fork.
class TestClient < Minitest::Test
  def setup
    @server = start_server({ "SKYBRIDGE_LIMITS_MAX_INPUT_BYTES" => "2000" })
    @client = Skybridge::Client.new(url: @server.url)
    @client.create_function(name: "echo", backend: "wasm", source: { type: "wasm", module: guest_module })
    @client.deploy_function("echo")
  end

  def teardown
    @server.close
  end

  def test_every_operation_with_models
    repo = git_repo("gofuncs")
    assert_equal "ok", @client.get_liveness.status
    health = @client.get_health
    assert_equal 3, health.backends.size
    assert_includes [true, false], health.go.tools_ready
    assert_match(/skybridge_http_requests_total/, @client.get_metrics)

    f = @client.create_function(name: "add", backend: "wasm", source: { type: "go", repo: repo, handler: "Add" },
                                env: { "MY_VAR" => "x" }, limits: { memory_mb: 64, timeout_ms: 3000 })
    assert_instance_of Skybridge::Function, f
    assert_equal 64, f.limits.memory_mb
    assert_instance_of Skybridge::SourceInfoGo, f.source
    assert_equal "Add", f.source.handler
    assert_equal({ "MY_VAR" => "x" }, f.env)
    assert_equal f, @client.get_function("add")
    assert_equal "add", f.to_h[:name]
    assert_equal 3000, f.to_h[:limits][:timeout_ms]
    assert_equal "add", f[:name]

    updated = @client.update_function("add", backend: "wasm", source: f.source, limits: { timeout_ms: 4000 })
    assert_equal 2, updated.version

    d = @client.deploy_and_wait("add")
    assert_equal "ready", d.status
    assert_equal 40, d.resolved_commit.size
    assert_equal d.id, @client.list_deployments("add", limit: 5).items.first.id
    assert_equal d.artifact_digest, @client.deploy_function("add", cache_bust: false).artifact_digest

    run = @client.invoke("add", input: [2, 40])
    assert_equal "succeeded", run.status
    assert_equal 42, run.output
    assert_equal run.id, @client.get_execution(run.id).id
    assert_equal "42", @client.get_execution_logs(run.id).stdout.strip
    assert_equal 1, @client.list_executions("add", status: "succeeded").items.size
    raw = @client.invoke_function("echo", input: { "mode" => "echo", "some_key" => 1 })
    assert_equal 1, raw.output["input"]["some_key"]

    assert_equal "3", @client.run_sky_island(url: repo, call: "Add(1, 2)").data

    assert_nil @client.delete_function("add")
    assert_raises(Skybridge::NotFoundError) { @client.get_function("add") }
  end

  def test_async_invoke_and_wait_for
    queued = @client.invoke_async("echo", input: { mode: "sleep", ms: 200 })
    assert_equal "queued", queued.status
    assert_equal "succeeded", @client.wait_for(queued.id, timeout: 30).status
    slow = @client.invoke_async("echo", input: { mode: "sleep", ms: 3000 })
    e = assert_raises(Skybridge::WaitTimeoutError) { @client.wait_for(slow.id, timeout: 0.2) }
    assert_equal slow.id, e.execution.id
  end

  def assert_error(klass, status, code, field = nil)
    e = assert_raises(klass) { yield }
    assert_kind_of Skybridge::Error, e
    assert_kind_of StandardError, e
    assert_equal status, e.status
    assert_equal code, e.code
    field.nil? ? assert_nil(e.field) : assert_equal(field, e.field)
    assert_match(/\A[0-9a-f-]{36}\z/, e.request_id)
    e
  end

  def test_errors_by_status
    spec = { backend: "wasm", source: { type: "wasm", module: guest_module } }
    assert_error(Skybridge::BadRequestError, 400, "invalid_parameter") { @client.list_functions(limit: 0) }
    assert_error(Skybridge::NotFoundError, 404, "function_not_found") { @client.get_function("nope") }
    assert_error(Skybridge::ConflictError, 409, "function_exists") { @client.create_function(name: "echo", **spec) }
    assert_error(Skybridge::ValidationError, 422, "validation_failed", "name") do
      @client.create_function(name: "Bad Name", **spec)
    end
    assert_error(Skybridge::PayloadTooLargeError, 413, "payload_too_large", "input") { @client.invoke("echo", input: "x" * 3000) }
    @client.create_function(name: "nope-fn", backend: "wasm",
                            source: { type: "go", repo: git_repo("gofuncs"), handler: "Nope" })
    e = assert_raises(Skybridge::DeploymentFailedError) { @client.deploy_and_wait("nope-fn") }
    assert_kind_of Skybridge::ValidationError, e
    assert_equal "failed", e.deployment.status
    assert_match(/no function Nope/, e.deployment.build_log)
  end

  def test_lists_iterate_across_pages
    5.times do |i|
      @client.create_function(name: "page-#{i}", backend: "wasm", source: { type: "wasm", module: guest_module })
    end
    first = @client.list_functions(limit: 2)
    assert_equal 2, first.items.size
    refute_nil first.next_cursor
    names = []
    @client.list_functions_each(limit: 2) { |f| names << f.name }
    5.times { |i| assert_includes names, "page-#{i}" }
    assert_equal names, @client.list_functions_each(limit: 2).map(&:name), "an Enumerator without a block"
    assert_equal names.uniq, names
  end

  def test_timeouts_and_interrupts
    e = assert_raises(Skybridge::TimeoutError) do
      Skybridge::Client.new(url: @server.url, max_retries: 0).invoke("echo", input: { mode: "sleep", ms: 3000 }, timeout: 0.3)
    end
    assert_equal "timeout", e.code
    require "timeout"
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(Timeout::Error) { Timeout.timeout(0.3) { @client.invoke("echo", input: { mode: "sleep", ms: 3000 }) } }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 2, "the call was interrupted"
    assert_equal "succeeded", @client.invoke("echo", input: { mode: "echo" }).status, "and the client still works"
  end

  def test_threads_overlap_because_the_gvl_is_released
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    counter = 0
    spinner = Thread.new { loop { counter += 1 } }
    threads = 2.times.map { Thread.new { @client.invoke("echo", input: { mode: "sleep", ms: 1000 }) } }
    results = threads.map(&:value)
    spinner.kill
    elapsed = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    assert(results.all? { |r| r.status == "succeeded" })
    assert_operator elapsed, :<, 1.8, "two 1 s calls overlapped"
    assert_operator counter, :>, 1000, "a Ruby thread ran while both calls were in flight"
  end

  def test_a_forked_child_makes_calls
    assert_equal "succeeded", @client.invoke("echo", input: { mode: "echo" }).status
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      r = @client.invoke("echo", input: { mode: "echo", from: "child" })
      writer.write(r.output["input"]["from"])
      writer.close
      exit!(0)
    end
    writer.close
    _, status = Process.wait2(pid)
    assert status.success?, status.inspect
    assert_equal "child", reader.read
    assert_equal "succeeded", @client.invoke("echo", input: { mode: "echo" }).status, "the parent still works"
  end
end
