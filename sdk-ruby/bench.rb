# frozen_string_literal: true

# Per-invoke latency of the SDK against Net::HTTP on a persistent connection,
# on the same function, alternating blocks of 100 so that noise falls on both.
# Run by `skybridge bench --sdks …`: ruby -Ilib bench.rb URL FUNCTION INPUT_JSON N.
# Prints {"plain": {"p50_us", "p99_us"}, "sdk": {...}}.

require "json"
require "net/http"
require "skybridge"

url, fn, input_json, n = ARGV
input = JSON.parse(input_json)
count = Integer(n)
uri = URI("#{url}/api/v1/functions/#{fn}/invoke")
body = JSON.generate({ input: input })
client = Skybridge::Client.new(url: url)

def quantiles(lat)
  lat.sort!
  pick = ->(q) { lat[((lat.size - 1) * q).round] }
  { p50_us: pick.call(0.5), p99_us: pick.call(0.99) }
end

def now_us
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :microsecond)
end

plain = []
sdk = []
Net::HTTP.start(uri.host, uri.port) do |http|
  ((count / 100.0).ceil + 2).times do |round|
    100.times do
      t = now_us
      req = Net::HTTP::Post.new(uri.path, "content-type" => "application/json")
      req.body = body
      e = JSON.parse(http.request(req).body)
      raise "plain invoke: #{e}" unless e["status"] == "succeeded"

      a = now_us - t
      t = now_us
      r = client.invoke(fn, input: input)
      raise "sdk invoke: #{r.inspect}" unless r.status == "succeeded"

      b = now_us - t
      next if round < 2

      plain << a
      sdk << b
    end
  end
end
puts JSON.generate(plain: quantiles(plain), sdk: quantiles(sdk))
