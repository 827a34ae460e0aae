# frozen_string_literal: true

module Skybridge
  # The base of the generated model classes: readers for the API's fields
  # (snake_case, as the API names them), `[]`, `to_h` and value equality.
  # Fields a newer server adds are kept and reachable through `[]` and `to_h`.
  class Model
    # A model from the API's JSON (a Hash with string keys); `nil` stays `nil`.
    def self.from_h(hash)
      return hash if hash.nil? || hash.is_a?(Model)

      new(hash)
    end

    def initialize(values)
      fields = self.class::FIELDS
      @values = {}
      values.each do |key, value|
        key = key.to_s
        @values[key] = Model.build(fields[key], value)
      end
    end

    # Builds a value by its kind in FIELDS: nil (as is), a model's name,
    # [kind] for arrays, { "*" => kind } for maps.
    def self.build(kind, value)
      return value if kind.nil? || value.nil?

      case kind
      when String then Skybridge.const_get(kind).from_h(value)
      when Array then value.map { |v| build(kind.first, v) }
      when Hash then value.transform_values { |v| build(kind["*"], v) }
      else value
      end
    end

    def [](key)
      @values[key.to_s]
    end

    # The model as a Hash with symbol keys (nested models too).
    def to_h
      @values.to_h { |k, v| [k.to_sym, Model.plain(v)] }
    end

    def self.plain(value)
      case value
      when Model then value.to_h
      when Array then value.map { |v| plain(v) }
      when Hash then value.transform_values { |v| plain(v) }
      else value
      end
    end

    def ==(other)
      other.is_a?(self.class) && other.to_h == to_h
    end
    alias eql? ==

    def hash
      to_h.hash
    end

    def inspect
      "#<#{self.class.name} #{to_h.map { |k, v| "#{k}=#{v.inspect}" }.join(", ")}>"
    end
    alias to_s inspect
  end
end
