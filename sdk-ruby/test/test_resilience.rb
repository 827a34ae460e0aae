# frozen_string_literal: true

require_relative "helper"

# Retries across a restart and a stopped backend.
class TestResilience < Minitest::Test
  def test_calls_made_while_the_server_restarts_are_retried
    server = start_server({}, port: free_port)
    client = Skybridge::Client.new(url: server.url, max_retries: 20)
    client.create_function(name: "g", backend: "wasm", source: { type: "wasm", module: guest_module })
    client.deploy_function("g")
    server.kill
    restarter = Thread.new do
      sleep 0.7
      server.start
    end
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_equal "g", client.get_function("g").name
    assert_equal "succeeded", client.invoke("g", input: { mode: "echo" }).status
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :>=, 0.5
    restarter.join
  ensure
    server&.close
  end

  def test_a_stopped_backend_is_unavailable_and_not_repeated
    server = start_server({ "SKYBRIDGE_DOCKER_SOCKET" => "/nonexistent/docker.sock" })
    client = Skybridge::Client.new(url: server.url, max_retries: 3)
    client.create_function(name: "d", backend: "docker", source: { type: "image", image: "busybox:1.36" })
    e = assert_raises(Skybridge::UnavailableError) { client.deploy_function("d") }
    assert_equal [503, "backend_unavailable"], [e.status, e.code]
    line = client.get_metrics.lines.find do |l|
      l.start_with?('skybridge_http_requests_total{method="POST",route="/api/v1/functions/{name}/deploy",status="503"}')
    end
    assert_equal 1, line.split.last.to_i, "a POST the server answered is not repeated"
  ensure
    server&.close
  end

  def test_client_settings_come_from_the_environment
    server = start_server
    ENV["SKYBRIDGE_URL"] = server.url
    assert_equal server.url, Skybridge::Client.new.url
    assert_equal "ok", Skybridge::Client.new.get_liveness.status
    assert_raises(Skybridge::Error) { Skybridge::Client.new(url: "ftp://x") }
    assert_raises(Skybridge::ConnectionError) do
      Skybridge::Client.new(url: "http://127.0.0.1:1", max_retries: 0).get_liveness
    end
  ensure
    ENV.delete("SKYBRIDGE_URL")
    server&.close
  end
end
